"""The composition root: builds the broker, the delivery pipeline and the app from settings."""

import logging
import signal
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker

from order_service.connection import build_security, client_kwargs
from order_service.delivery import build_pipeline, build_producer
from order_service.handlers import orders_router, retry_group
from order_service.http import health_routes
from order_service.messaging.health import GroupMembership, ReadinessProbe
from order_service.messaging.records import DeliveryPipeline, RecordSink
from order_service.messaging.sink import ProducerSink
from order_service.provisioning import provision_topics, topic_specs
from order_service.settings import Settings, load_settings

logger = logging.getLogger("order_service")


def configure_logging(level: str) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s - %(message)s")
    logging.getLogger("order_service").setLevel(level)


class OrderServiceApp(AsgiFastStream):
    """The FastStream app with its HTTP server; `--host`/`--port` on the command line still win."""

    def __init__(self, *args: Any, http_defaults: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http_defaults = http_defaults

    async def run(
        self, log_level: int = logging.INFO, run_extra_options: dict[str, Any] | None = None
    ) -> None:
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
        # handler that was there before it; a no-op one lets a clean shutdown exit 0.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _already_handled)
        await super().run(log_level, {**self._http_defaults, **(run_extra_options or {})})


def _already_handled(signum: int, frame: object) -> None:
    logger.info("shutdown complete after signal %s", signal.Signals(signum).name)


def create_app(settings: Settings | None = None) -> OrderServiceApp:
    """Build the whole service; no I/O happens until the app starts."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    sink = ProducerSink(lambda: build_producer(settings))
    pipeline = build_pipeline(settings, sink, group_id=settings.consumer.group_id)
    retry_pipeline = (
        build_pipeline(settings, sink, group_id=retry_group(settings), delayed=True)
        if settings.retry.topic_enabled
        else None
    )
    membership = GroupMembership()
    broker = create_broker(settings, pipeline, membership, retry_pipeline)
    probe = ReadinessProbe(
        lambda: AIOKafkaAdminClient(**client_kwargs(settings.kafka)),
        topics=[spec.name for spec in topic_specs(settings)],
        membership=membership,
    )

    async def start_delivery() -> None:
        created = await provision_topics(settings)
        if created:
            logger.info("created topics: %s", ", ".join(created))
        await sink.start()

    return OrderServiceApp(
        broker,
        asgi_routes=health_routes(probe),
        on_startup=[start_delivery],
        after_shutdown=[
            pipeline.close,
            *([retry_pipeline.close] if retry_pipeline else []),
            sink.stop,
            probe.stop,
        ],
        http_defaults={"host": settings.http.host, "port": settings.http.port},
    )


def create_broker(
    settings: Settings,
    pipeline: DeliveryPipeline,
    membership: GroupMembership | None = None,
    retry_pipeline: DeliveryPipeline | None = None,
) -> KafkaBroker:
    """The broker with the order subscriber; tests hand it to FastStream's test broker."""
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
    membership = membership or GroupMembership()
    membership.chain(pipeline.rebalance_listener())
    retry = (retry_pipeline, retry_pipeline.rebalance_listener()) if retry_pipeline else None
    broker.include_router(orders_router(settings, pipeline, membership, retry))
    return broker


def create_test_broker(settings: Settings, sink: RecordSink) -> KafkaBroker:
    """The at-least-once broker over a given sink, for FastStream's TestKafkaBroker."""
    return create_broker(settings, build_pipeline(settings, sink, group_id=settings.consumer.group_id))
