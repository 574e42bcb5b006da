"""create_app: the whole service, and how it starts and stops."""

import asyncio
import functools
import gc
import logging
import time

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider

from kafka_delivery.effects import DatabaseRefused, EffectBatches, Inbox, connect_pool
from kafka_delivery.engine import DeliveryEngine
from kafka_delivery.operations import ReadinessProbe, StallMonitor
from kafka_delivery.producing import ProducerSink
from order_service.adapters.connection import ProducerFactory, client_kwargs, retry_until, wait_for_cluster
from order_service.adapters.http import health_routes
from order_service.adapters.logs import configure_logging
from order_service.adapters.observability import Observability, build_observability
from order_service.adapters.provisioning import provision, topic_specs
from order_service.adapters.server import OrderServiceApp
from order_service.adapters.supervision import Supervisor
from order_service.bootstrap.broker import create_broker
from order_service.errors import ConfigurationError
from order_service.processing import Processor, ProcessorContext
from order_service.settings import ENV_PREFIX, EffectsSettings, Settings, load_settings

logger = logging.getLogger("order_service")
STALL_CHECK_INTERVAL_S = 1.0
GC_YOUNG_THRESHOLD = 20_000
# The share of the shutdown grace period the delivery engines get to commit what they fetched.
DRAIN_SHARE = 0.6
DESCRIPTION = (
    "Consumes OrderCreated events, validates and processes each order, and publishes one "
    "OrderProcessed per order; records that cannot be processed go to the dead-letter topic."
)


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> OrderServiceApp:
    """Build the whole service; no I/O happens until the app starts."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    observed = build_observability(settings.otel_traces_exporter, tracer_provider)
    producers = ProducerFactory(settings.kafka, settings.producer)
    sink = ProducerSink(
        producers,
        topics=settings.topics.written(retry_topic=settings.retry.topic_enabled),
        linger_ms=settings.producer.linger_ms,
    )
    processor = Processor(settings.processing)
    effects = effect_batches(settings.effects)
    broker, subscriptions = create_broker(
        settings, observed, sink=sink, producers=producers, processor=processor, effects=effects
    )
    memberships = [s.membership for s in subscriptions]
    supervisor = Supervisor(
        grace_s=settings.shutdown_grace_period_s,
        join_timeout_s=settings.consumer.join_timeout_s,
        memberships=memberships,
    )
    probe = ReadinessProbe(
        lambda: AIOKafkaClient(**client_kwargs(settings.kafka)),
        topics=[spec.name for spec in topic_specs(settings.topics, retry_topic=settings.retry.topic_enabled)],
        memberships=memberships,
        blocked=lambda: {
            tp: f"blocked at offset {b.offset}: {b.reason} ({b.error})"
            for s in subscriptions
            for tp, b in s.pipeline.backoff.blocked.items()
        },
        transactional_ids=lambda: [i for s in subscriptions for i in s.pipeline.transactional_ids()],
        dependencies=[effects.check] if effects is not None else [],
    )
    monitors = [
        StallMonitor(
            group=s.group,
            assignment=lambda s=s: s.membership.assigned,  # type: ignore[misc]
            end_offset=functools.partial(_end_offset, observed, s.pipeline),
            committed=s.pipeline.committed,
            stall_after_s=settings.delivery.stall_after_s,
            stalls=observed.metrics.stalls,
        )
        for s in subscriptions
    ]
    tasks: list[asyncio.Task[None]] = []
    prepared = asyncio.Event()

    async def prepare() -> None:
        """Wait for the cluster, provision the topics, start the producer, connect the database and
        enter the processor, each within its deadline. What was opened is closed if one fails."""
        if prepared.is_set():
            return
        try:
            await connect_kafka()
            if effects is not None:
                await start_effects(effects, settings.effects)
            await processor.enter(ProcessorContext(settings, effects.pool if effects is not None else None))
        except BaseException:
            await processor.exit()
            if effects is not None:
                await effects.close()
            await sink.stop()
            raise
        prepared.set()

    async def connect_kafka() -> None:
        deadline = time.monotonic() + settings.kafka.connect_timeout_s
        await wait_for_cluster(settings.kafka, deadline)
        created, max_request_size = await retry_until(
            deadline,
            "provisioning topics",
            lambda: provision(settings.kafka, settings.topics, retry_topic=settings.retry.topic_enabled),
        )
        producers.fit(max_request_size)
        if created:
            logger.info("created topics: %s", ", ".join(created))
        await retry_until(deadline, "starting the producer", sink.start)

    async def watch() -> None:
        tune_garbage_collector()
        tasks.append(asyncio.create_task(supervisor.watch_join()))
        tasks.extend(asyncio.create_task(m.run(STALL_CHECK_INTERVAL_S)) for m in monitors)

    async def unwatch() -> None:
        for task in tasks:
            task.cancel()

    async def drain() -> None:
        """Before the consumers stop: finish, publish and commit what was fetched, within the grace."""
        budget = settings.shutdown_grace_period_s * DRAIN_SHARE
        await asyncio.gather(*(s.pipeline.drain(budget) for s in subscriptions))

    async def close() -> None:
        for s in subscriptions:
            await supervisor.bounded(f"pipeline {s.group}", s.pipeline.close)
        await supervisor.bounded("producer", sink.stop)
        # After the last commit: no record is worked any more, and the processor's resources are no
        # longer needed. Its exit may still use the database pool, closed last.
        if effects is not None:
            await supervisor.bounded("effect batches", effects.stop)
        await supervisor.bounded("processor", processor.exit)
        if effects is not None:
            await supervisor.bounded("database", effects.close)
        await supervisor.bounded("readiness probe", probe.stop)

    return OrderServiceApp(
        broker,
        asgi_routes=[*health_routes(probe), observed.metrics_route()],
        on_startup=[prepare],
        after_startup=[watch],
        on_shutdown=[unwatch, drain],
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


def effect_batches(effects: EffectsSettings) -> EffectBatches | None:
    """The processor's effects in PostgreSQL when a database is set (docs/delivery-guarantees.md)."""
    url = effects.database_url
    if url is None:
        return None
    return EffectBatches(
        lambda: connect_pool(
            url.get_secret_value(),
            timeout_s=effects.connect_timeout_s,
            statement_timeout_s=effects.statement_timeout_s,
        ),
        inbox=Inbox(effects.inbox_table) if effects.inbox else None,
        retention_s=effects.inbox_retention_s,
        max_batch=effects.max_batch,
        transaction_timeout_s=effects.transaction_timeout_s,
        backoff_ms=effects.backoff_ms,
        max_backoff_ms=effects.max_backoff_ms,
    )


async def start_effects(batches: EffectBatches, effects: EffectsSettings) -> None:
    """Connect and create the inbox; ConfigurationError naming the URL's variable when refused."""
    variable = f"{ENV_PREFIX}EFFECTS__DATABASE_URL"
    try:
        await batches.start()
    except DatabaseRefused as exc:
        raise ConfigurationError(f"{variable}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - creating the inbox failed: the service cannot work
        raise ConfigurationError(f"{variable}: preparing the inbox failed: {type(exc).__name__}") from None


def tune_garbage_collector() -> None:
    """Once started: what start-up built lives until exit, so the collector stops scanning it.

    Without this a full collection walks every module, model and client object, ~100 ms each on
    the bench machine, a dozen times a minute under load: CPU lost and a latency spike each time.
    Fewer young-generation passes suit a service that allocates a few short-lived objects per record.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _end_offset(observed: Observability, pipeline: DeliveryEngine, tp: TopicPartition) -> int | None:
    consumer = pipeline.consumer()
    return None if consumer is None else observed.metrics.end_offset(consumer, tp)
