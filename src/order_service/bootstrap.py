"""The composition root: builds the broker, the delivery pipeline and the app from settings."""

import logging
import signal
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider

from order_service.connection import build_security, client_kwargs
from order_service.delivery import build_pipeline, build_producer
from order_service.handlers import orders_router, retry_group
from order_service.http import health_routes
from order_service.logs import configure_logging
from order_service.messaging.health import GroupMembership, ReadinessProbe
from order_service.messaging.records import DeliveryPipeline, RecordSink
from order_service.messaging.sink import ProducerSink
from order_service.observability import Observability, build_observability
from order_service.provisioning import provision_topics, topic_specs
from order_service.settings import Settings, load_settings

logger = logging.getLogger("order_service")
DESCRIPTION = (
    "Consumes OrderCreated events, validates and processes each order, and publishes one "
    "OrderProcessed per order; records that cannot be processed go to the dead-letter topic."
)


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


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> OrderServiceApp:
    """Build the whole service; no I/O happens until the app starts."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    observed = build_observability(tracer_provider)
    sink = ProducerSink(lambda: build_producer(settings))
    group = settings.consumer.group_id
    pipeline = build_pipeline(settings, sink, group_id=group, observed=observed)
    retry_pipeline = (
        build_pipeline(settings, sink, group_id=retry_group(settings), observed=observed, delayed=True)
        if settings.retry.topic_enabled
        else None
    )
    pipelines = [p for p in (pipeline, retry_pipeline) if p is not None]
    membership = GroupMembership(observed.metrics, group)
    broker = create_broker(settings, pipeline, membership, observed, retry_pipeline)
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
        asgi_routes=[*health_routes(probe), observed.metrics_route()],
        on_startup=[start_delivery],
        after_shutdown=[*(p.close for p in pipelines), sink.stop, probe.stop],
        logger=logging.getLogger("order_service.app"),
        specification=AsyncAPI(broker, title="order-service", version="0.1.0", description=DESCRIPTION),
        # uvicorn leaves logging to us (one format for every line); health probes are not logged.
        http_defaults={
            "host": settings.http.host,
            "port": settings.http.port,
            "log_config": None,
            "access_log": "false",
        },
    )


def create_broker(
    settings: Settings,
    pipeline: DeliveryPipeline,
    membership: GroupMembership,
    observed: Observability,
    retry_pipeline: DeliveryPipeline | None = None,
) -> KafkaBroker:
    """The broker with the order subscribers (input, and retry topic when enabled)."""
    kafka = settings.kafka
    middlewares: list[Any] = [KafkaPrometheusMiddleware(registry=observed.registry, app_name="order-service")]
    if observed.tracer_provider is not None:
        middlewares.append(KafkaTelemetryMiddleware(tracer_provider=observed.tracer_provider))
    broker = KafkaBroker(
        kafka.bootstrap_servers,
        client_id=kafka.client_id,
        request_timeout_ms=kafka.request_timeout_ms,
        security=build_security(kafka),
        consumer_only=True,
        # The service provisions its topics itself, with the configured replication factor.
        allow_auto_create_topics=False,
        graceful_timeout=settings.shutdown_grace_period_s,
        # Handlers get the raw records of a batch: see orders_router.
        apply_types=False,
        middlewares=middlewares,
        logger=logging.getLogger("order_service.broker"),
        # FastStream's per-batch "Received"/"Processed" lines are debug detail here.
        log_level=logging.DEBUG,
    )
    membership.chain(pipeline.rebalance_listener())
    observed.metrics.watch_lag(settings.consumer.group_id, _consumer_of(pipeline), pipeline.committed)
    retry = None
    if retry_pipeline is not None:
        group = retry_group(settings)
        retry_membership = GroupMembership(observed.metrics, group)
        retry_membership.chain(retry_pipeline.rebalance_listener())
        observed.metrics.watch_lag(group, _consumer_of(retry_pipeline), retry_pipeline.committed)
        retry = (retry_pipeline, retry_membership)
    broker.include_router(orders_router(settings, pipeline, membership, retry))
    return broker


def _consumer_of(pipeline: DeliveryPipeline) -> Callable[[], Any]:
    # Late-bound: the subscriber hands the pipeline its consumer when it subscribes.
    return lambda: pipeline.consumer()


def create_test_broker(settings: Settings, sink: RecordSink) -> KafkaBroker:
    """The at-least-once broker over a given sink, for FastStream's TestKafkaBroker."""
    observed = build_observability()
    group = settings.consumer.group_id
    pipeline = build_pipeline(settings, sink, group_id=group, observed=observed)
    return create_broker(settings, pipeline, GroupMembership(observed.metrics, group), observed)
