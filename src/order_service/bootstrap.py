"""The composition root: builds the broker, the delivery pipeline and the app from settings."""

import asyncio
import functools
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import uvicorn
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from faststream.asgi import AsgiFastStream
from faststream.asgi.app import cast_uvicorn_params
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider

from order_service.connection import (
    StartupError,
    build_security,
    client_kwargs,
    retry_until,
    wait_for_cluster,
)
from order_service.delivery import DEFAULT_MAX_REQUEST_BYTES, build_pipeline, build_producer
from order_service.handlers import orders_router, retry_group
from order_service.http import health_routes
from order_service.logs import configure_logging
from order_service.messaging.health import GroupMembership, ReadinessProbe
from order_service.messaging.records import DeliveryPipeline, RecordSink
from order_service.messaging.sink import ProducerSink
from order_service.messaging.stalls import StallMonitor
from order_service.observability import Observability, build_observability
from order_service.provisioning import provision, topic_specs
from order_service.settings import ConfigurationError, Settings, load_settings
from order_service.supervision import Supervisor

logger = logging.getLogger("order_service")
STALL_CHECK_INTERVAL_S = 1.0
DESCRIPTION = (
    "Consumes OrderCreated events, validates and processes each order, and publishes one "
    "OrderProcessed per order; records that cannot be processed go to the dead-letter topic."
)


class Subscription(NamedTuple):
    """One consumer group and the pipeline its records go through."""

    group: str
    pipeline: DeliveryPipeline


class OrderServiceApp(AsgiFastStream):
    """The FastStream app with its HTTP server; `--host`/`--port` on the command line still win."""

    def __init__(
        self,
        *args: Any,
        http_defaults: dict[str, Any],
        supervisor: Supervisor,
        prepare: Callable[[], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._http_defaults = http_defaults
        self._supervisor = supervisor
        self._prepare = prepare

    async def run(
        self, log_level: int = logging.INFO, run_extra_options: dict[str, Any] | None = None
    ) -> None:
        try:
            await self._prepare()
        except StartupError as exc:
            logger.error("cannot start: %s", exc)
            raise SystemExit(1) from None
        except Exception as exc:
            logger.error("cannot start: %s: %s", type(exc).__name__, exc)
            logger.debug("start-up failure", exc_info=True)
            raise SystemExit(1) from None
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
        # handler that was there before it; a no-op one lets a clean shutdown exit 0.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _already_handled)
        options = cast_uvicorn_params({**self._http_defaults, **(run_extra_options or {})})
        accepted = set(inspect.signature(uvicorn.Config).parameters)
        config = uvicorn.Config(
            app=self, log_level=log_level, **{k: v for k, v in options.items() if k in accepted}
        )
        await self._supervisor.server(config).serve()
        if self._supervisor.exit_code:
            raise SystemExit(self._supervisor.exit_code)

    async def _start_broker(self) -> None:
        # FastStream starts the broker in a task group after the start-up hooks: a failure there
        # would leave a process that answers HTTP and consumes nothing. End it instead.
        try:
            await super()._start_broker()
        except Exception as exc:  # noqa: BLE001 - whatever it is, the service cannot work without it
            self._supervisor.fail(f"the Kafka consumer could not start: {exc!r}")


def _already_handled(signum: int, frame: object) -> None:
    logger.info("shutdown complete after signal %s", signal.Signals(signum).name)


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> OrderServiceApp:
    """Build the whole service; no I/O happens until the app starts."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        return _build_app(settings, tracer_provider)
    except StartupError as exc:
        raise ConfigurationError(str(exc)) from None


def _build_app(settings: Settings, tracer_provider: TracerProvider | None) -> OrderServiceApp:
    observed = build_observability(tracer_provider)
    # Raised at start to what a dead letter of the input topic's largest record needs.
    sizing = {"max_request_size": DEFAULT_MAX_REQUEST_BYTES}
    sink = ProducerSink(lambda: build_producer(settings, **sizing))
    subscriptions = [
        Subscription(
            settings.consumer.group_id,
            build_pipeline(
                settings, sink, group_id=settings.consumer.group_id, observed=observed, sizing=sizing
            ),
        )
    ]
    if settings.retry.topic_enabled:
        group = retry_group(settings)
        pipeline = build_pipeline(
            settings, sink, group_id=group, observed=observed, sizing=sizing, delayed=True
        )
        subscriptions.append(Subscription(group, pipeline))
    memberships = [GroupMembership(observed.metrics, s.group) for s in subscriptions]
    broker = create_broker(settings, subscriptions, memberships, observed)
    supervisor = Supervisor(
        grace_s=settings.shutdown_grace_period_s,
        join_timeout_s=settings.consumer.join_timeout_s,
        memberships=memberships,
    )
    probe = ReadinessProbe(
        lambda: AIOKafkaClient(**client_kwargs(settings.kafka)),
        topics=[spec.name for spec in topic_specs(settings)],
        memberships=memberships,
        blocked=lambda: {
            tp: f"blocked at offset {b.offset}: {b.reason} ({b.error})"
            for s in subscriptions
            for tp, b in s.pipeline.backoff.blocked.items()
        },
        transactional_ids=lambda: [i for s in subscriptions for i in s.pipeline.transactional_ids()],
    )
    monitors = [
        StallMonitor(
            group=s.group,
            assignment=lambda m=m: m.assigned,  # type: ignore[misc]
            end_offset=lambda tp, s=s: _end_offset(observed, s.pipeline, tp),  # type: ignore[misc]
            committed=s.pipeline.committed,
            stall_after_s=settings.processing.stall_after_s,
            stalls=observed.metrics.stalls,
        )
        for s, m in zip(subscriptions, memberships, strict=True)
    ]
    tasks: list[asyncio.Task[None]] = []
    prepared = asyncio.Event()

    async def prepare() -> None:
        if prepared.is_set():
            return
        deadline = time.monotonic() + settings.kafka.connect_timeout_s
        await wait_for_cluster(settings.kafka, deadline)
        created, sizing["max_request_size"] = await retry_until(
            deadline, "provisioning topics", lambda: provision(settings)
        )
        if created:
            logger.info("created topics: %s", ", ".join(created))
        await retry_until(deadline, "starting the producer", sink.start)
        prepared.set()

    async def watch() -> None:
        tasks.append(asyncio.create_task(supervisor.watch_join()))
        tasks.extend(asyncio.create_task(m.run(STALL_CHECK_INTERVAL_S)) for m in monitors)

    async def unwatch() -> None:
        for task in tasks:
            task.cancel()

    closes = [*((f"pipeline {s.group}", s.pipeline.close) for s in subscriptions), ("producer", sink.stop)]
    closes.append(("readiness probe", probe.stop))

    async def close() -> None:
        for what, step in closes:
            await supervisor.bounded(what, step)

    return OrderServiceApp(
        broker,
        asgi_routes=[*health_routes(probe), observed.metrics_route()],
        on_startup=[prepare],
        after_startup=[watch],
        on_shutdown=[unwatch],
        after_shutdown=[close],
        logger=logging.getLogger("order_service.app"),
        specification=AsyncAPI(broker, title="order-service", version="0.1.0", description=DESCRIPTION),
        # uvicorn leaves logging to us (one format for every line); health probes are not logged.
        http_defaults={
            "host": settings.http.host,
            "port": settings.http.port,
            "log_config": None,
            "access_log": "false",
        },
        supervisor=supervisor,
        prepare=prepare,
    )


def _end_offset(observed: Observability, pipeline: DeliveryPipeline, tp: TopicPartition) -> int | None:
    consumer = pipeline.consumer()
    return None if consumer is None else observed.metrics.end_offset(consumer, tp)


def create_broker(
    settings: Settings,
    subscriptions: Sequence[Subscription],
    memberships: Sequence[GroupMembership],
    observed: Observability,
) -> KafkaBroker:
    """The broker with the order subscribers (input, and retry topic when enabled)."""
    kafka = settings.kafka
    middlewares: list[Any] = [KafkaPrometheusMiddleware(registry=observed.registry, app_name="order-service")]
    if observed.tracer_provider is not None:
        middlewares.append(KafkaTelemetryMiddleware(tracer_provider=observed.tracer_provider))
    broker = KafkaBroker(
        list(kafka.bootstrap_servers),
        client_id=kafka.client_id,
        request_timeout_ms=kafka.request_timeout_ms,
        security=build_security(kafka),
        consumer_only=True,
        # The service provisions its topics itself, with the configured replication factor.
        allow_auto_create_topics=False,
        # Part of the shutdown grace period: the rest closes producers and transactions.
        graceful_timeout=settings.shutdown_grace_period_s * 0.75,
        # Handlers get the raw records of a batch: see orders_router.
        apply_types=False,
        middlewares=middlewares,
        logger=logging.getLogger("order_service.broker"),
        # FastStream's per-batch "Received"/"Processed" lines are debug detail here.
        log_level=logging.DEBUG,
    )
    for subscription, membership in zip(subscriptions, memberships, strict=True):
        group, pipeline = subscription
        membership.chain(pipeline.rebalance_listener())
        observed.metrics.watch_lag(group, _consumer_of(pipeline), pipeline.committed)
        membership.baseline = functools.partial(observed.metrics.baseline, group)
    input_, *retry = zip(subscriptions, memberships, strict=True)
    retry_pair = (retry[0][0].pipeline, retry[0][1]) if retry else None
    broker.include_router(orders_router(settings, input_[0].pipeline, input_[1], retry_pair))
    return broker


def _consumer_of(pipeline: DeliveryPipeline) -> Callable[[], Any]:
    # Late-bound: the subscriber hands the pipeline its consumer when it subscribes.
    return lambda: pipeline.consumer()


def create_test_broker(settings: Settings, sink: RecordSink) -> KafkaBroker:
    """The at-least-once broker over a given sink, for FastStream's TestKafkaBroker."""
    observed = build_observability()
    group = settings.consumer.group_id
    pipeline = build_pipeline(settings, sink, group_id=group, observed=observed, sizing={})
    return create_broker(
        settings, [Subscription(group, pipeline)], [GroupMembership(observed.metrics, group)], observed
    )
