"""Builds the delivery pipeline the settings ask for: at-least-once or exactly-once."""

from typing import Any

from aiokafka import AIOKafkaProducer

from order_service.connection import client_kwargs
from order_service.handlers import order_handler
from order_service.messaging.dead_letter import DeadLetterMiddleware
from order_service.messaging.partitioner import Murmur2Partitioner
from order_service.messaging.pipeline import BatchPipeline
from order_service.messaging.records import DeliveryPipeline, RecordSink
from order_service.messaging.retry import DelayGate, RetryTopic
from order_service.messaging.tracing import TracingMiddleware
from order_service.messaging.transactional import TransactionalPipeline
from order_service.messaging.transactional_producers import PartitionProducers
from order_service.observability import Observability
from order_service.settings import Settings

# aiokafka's default; start-up raises it to what a dead letter of the largest input record needs.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024


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
        partitioner=Murmur2Partitioner(),
        **extra,
    )


def record_handler(settings: Settings, group_id: str, observed: Observability) -> DeadLetterMiddleware:
    retry = settings.retry
    handler = order_handler(settings, observed.orders)
    if observed.tracer_provider is not None:
        # Inside the DLQ middleware: a dead letter keeps the input's own trace headers.
        handler = TracingMiddleware(handler, observed.tracer_provider.get_tracer("order_service"))
    return DeadLetterMiddleware(
        handler,
        topic=settings.topics.dead_letter,
        group_id=group_id,
        metrics=observed.metrics,
        retry=retry.policy(),
        retry_topic=(
            RetryTopic(settings.topics.retry, hops=retry.topic_hops, delay_ms=retry.topic_delay_ms)
            if retry.topic_enabled
            else None
        ),
        secrets=settings.secret_values(),
        max_message_chars=settings.processing.max_error_message_chars,
    )


def build_pipeline(
    settings: Settings,
    sink: RecordSink,
    *,
    group_id: str,
    observed: Observability,
    sizing: dict[str, int],
    delayed: bool = False,
) -> DeliveryPipeline:
    """The pipeline for one subscriber; `delayed` ones wait for each record's retry due time."""
    processing = settings.processing
    gate = DelayGate() if delayed else None
    if processing.guarantee == "exactly_once":
        producers = PartitionProducers(
            lambda txn_id: build_producer(
                settings,
                transactional_id=txn_id,
                transaction_timeout_ms=processing.transaction_timeout_ms,
                **sizing,
            ),
            # The group id is the application id: instances of one application share it.
            app_id=group_id,
        )
        return TransactionalPipeline(
            record_handler(settings, group_id, observed),
            producers,
            group_id=group_id,
            metrics=observed.metrics,
            commit_interval_ms=processing.commit_interval_ms,
            commit_timeout_ms=processing.commit_timeout_ms,
            retry_backoff_ms=processing.retry_backoff_ms,
            max_retry_backoff_ms=processing.max_retry_backoff_ms,
            gate=gate,
        )
    return BatchPipeline(
        record_handler(settings, group_id, observed),
        sink,
        metrics=observed.metrics,
        retry_backoff_ms=processing.retry_backoff_ms,
        max_retry_backoff_ms=processing.max_retry_backoff_ms,
        gate=gate,
    )
