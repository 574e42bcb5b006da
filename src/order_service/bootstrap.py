"""The composition root: builds the broker, the delivery pipeline and the app from settings."""

import logging

from aiokafka import AIOKafkaProducer
from faststream import FastStream
from faststream.kafka import KafkaBroker

from order_service.connection import build_security, client_kwargs
from order_service.handlers import order_handler, orders_router
from order_service.messaging.dead_letter import DeadLetterMiddleware
from order_service.messaging.pipeline import BatchPipeline
from order_service.messaging.records import RecordSink
from order_service.messaging.sink import ProducerSink
from order_service.provisioning import provision_topics
from order_service.settings import Settings, load_settings

logger = logging.getLogger("order_service")


def configure_logging(level: str) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s - %(message)s")
    logging.getLogger("order_service").setLevel(level)


def build_producer(settings: Settings) -> AIOKafkaProducer:
    producer = settings.producer
    return AIOKafkaProducer(
        **client_kwargs(settings.kafka),
        acks=producer.acks,
        enable_idempotence=True,
        linger_ms=producer.linger_ms,
        max_batch_size=producer.max_batch_bytes,
        compression_type=None if producer.compression_type == "none" else producer.compression_type,
    )


def build_pipeline(settings: Settings, sink: RecordSink) -> BatchPipeline:
    dead_letters = DeadLetterMiddleware(
        order_handler(settings),
        topic=settings.topics.dead_letter,
        group_id=settings.consumer.group_id,
        secrets=settings.secret_values(),
        max_message_chars=settings.processing.max_error_message_chars,
    )
    return BatchPipeline(
        dead_letters,
        sink,
        retry_backoff_ms=settings.processing.retry_backoff_ms,
        max_retry_backoff_ms=settings.processing.max_retry_backoff_ms,
    )


def create_app(settings: Settings | None = None) -> FastStream:
    """Build the whole service; no I/O happens until the app starts."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    sink = ProducerSink(lambda: build_producer(settings))
    broker = create_broker(settings, sink)

    async def start_delivery() -> None:
        created = await provision_topics(settings)
        if created:
            logger.info("created topics: %s", ", ".join(created))
        await sink.start()

    return FastStream(broker, on_startup=[start_delivery], after_shutdown=[sink.stop])


def create_broker(settings: Settings, sink: RecordSink) -> KafkaBroker:
    """The broker with the order subscriber; tests pass their own sink to FastStream's test broker."""
    kafka = settings.kafka
    broker = KafkaBroker(
        kafka.bootstrap_servers,
        client_id=kafka.client_id,
        request_timeout_ms=kafka.request_timeout_ms,
        security=build_security(kafka),
        consumer_only=True,
        # The service provisions its topics itself, with the configured replication factor.
        allow_auto_create_topics=False,
        graceful_timeout=settings.shutdown_grace_period_s,
    )
    broker.include_router(orders_router(settings, build_pipeline(settings, sink)))
    return broker
