"""Builds the delivery pipeline the settings ask for: at-least-once or exactly-once."""

from typing import Any

from aiokafka import AIOKafkaProducer

from order_service.connection import client_kwargs
from order_service.handlers import order_handler
from order_service.messaging.dead_letter import DeadLetterMiddleware
from order_service.messaging.pipeline import BatchPipeline
from order_service.messaging.records import DeliveryPipeline, RecordSink
from order_service.messaging.transactional import TransactionalPipeline
from order_service.messaging.transactional_producers import PartitionProducers
from order_service.settings import Settings


def build_producer(settings: Settings, **extra: Any) -> AIOKafkaProducer:
    """An idempotent acks=all producer; `extra` adds e.g. a transactional id."""
    producer = settings.producer
    return AIOKafkaProducer(
        **client_kwargs(settings.kafka),
        acks=producer.acks,
        enable_idempotence=True,
        linger_ms=producer.linger_ms,
        max_batch_size=producer.max_batch_bytes,
        compression_type=None if producer.compression_type == "none" else producer.compression_type,
        **extra,
    )


def record_handler(settings: Settings) -> DeadLetterMiddleware:
    return DeadLetterMiddleware(
        order_handler(settings),
        topic=settings.topics.dead_letter,
        group_id=settings.consumer.group_id,
        secrets=settings.secret_values(),
        max_message_chars=settings.processing.max_error_message_chars,
    )


def build_pipeline(settings: Settings, sink: RecordSink) -> DeliveryPipeline:
    processing = settings.processing
    if processing.guarantee == "exactly_once":
        producers = PartitionProducers(
            lambda txn_id: build_producer(
                settings, transactional_id=txn_id, transaction_timeout_ms=processing.transaction_timeout_ms
            ),
            # The group id is the application id: instances of one application share it.
            app_id=settings.consumer.group_id,
        )
        return TransactionalPipeline(
            record_handler(settings),
            producers,
            group_id=settings.consumer.group_id,
            commit_interval_ms=processing.commit_interval_ms,
            commit_timeout_ms=processing.commit_timeout_ms,
        )
    return BatchPipeline(
        record_handler(settings),
        sink,
        retry_backoff_ms=processing.retry_backoff_ms,
        max_retry_backoff_ms=processing.max_retry_backoff_ms,
    )
