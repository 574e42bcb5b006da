"""The composition root: builds every part of the service from settings, and nothing else does."""

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.specification import AsyncAPI
from opentelemetry.sdk.trace import TracerProvider

from kafka_delivery.operations import ReadinessProbe, StallMonitor
from kafka_delivery.producing import ProducerSink
from kafka_delivery.types import DeliveryPipeline
from order_service.adapters.connection import (
    DEFAULT_MAX_REQUEST_BYTES,
    build_producer,
    build_security,
    client_kwargs,
    retry_until,
    wait_for_cluster,
)
from order_service.adapters.http import health_routes
from order_service.adapters.logs import configure_logging
from order_service.adapters.observability import Observability, build_observability
from order_service.adapters.provisioning import provision, topic_specs
from order_service.adapters.server import OrderServiceApp
from order_service.adapters.supervision import Supervisor
from order_service.delivery import Subscription, build_subscriptions
from order_service.orders import document_outputs, subscribe
from order_service.settings import Settings, load_settings

logger = logging.getLogger("order_service")
STALL_CHECK_INTERVAL_S = 1.0
GC_YOUNG_THRESHOLD = 20_000
# The share of the shutdown grace period the delivery engines get to commit what they fetched.
DRAIN_SHARE = 0.6
DESCRIPTION = (
    "Consumes OrderCreated events, validates and processes each order, and publishes one "
    "OrderProcessed per order; records that cannot be processed go to the dead-letter topic."
)


def create_broker(
    settings: Settings, subscriptions: Sequence[Subscription], observed: Observability
) -> KafkaBroker:
    """The broker with one subscriber per subscription."""
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
        # Part of the shutdown grace period: the engines drain before (DRAIN_SHARE), producers close after.
        graceful_timeout=settings.shutdown_grace_period_s * 0.2,
        # Handlers get the raw records of a batch: see orders.subscribe.
        apply_types=False,
        middlewares=middlewares,
        logger=logging.getLogger("order_service.broker"),
        # FastStream's per-batch "Received"/"Processed" lines are debug detail here.
        log_level=logging.DEBUG,
    )
    router = KafkaRouter()
    for s in subscriptions:
        s.subscriber.append(
            subscribe(
                router,
                settings.consumer,
                topic=s.topic,
                group_id=s.group,
                listener=s.membership,
                process=s.pipeline.process,
            )
        )
    document_outputs(router, settings.topics, retry_topic=settings.retry.topic_enabled)
    broker.include_router(router)
    return broker


def create_app(
    settings: Settings | None = None, tracer_provider: TracerProvider | None = None
) -> OrderServiceApp:
    """Build the whole service; no I/O happens until the app starts."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    observed = build_observability(settings.otel_traces_exporter, tracer_provider)
    # Raised at start to what a dead letter of the input topic's largest record needs.
    sizing = {"max_request_size": DEFAULT_MAX_REQUEST_BYTES}
    sink = ProducerSink(
        lambda: build_producer(settings.kafka, settings.producer, **sizing),
        topics=settings.topics.written(retry_topic=settings.retry.topic_enabled),
        linger_ms=settings.producer.linger_ms,
    )
    subscriptions = build_subscriptions(settings, sink, observed, sizing)
    broker = create_broker(settings, subscriptions, observed)
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
        """Wait for the cluster, provision the topics and start the producer, within the deadline."""
        if prepared.is_set():
            return
        deadline = time.monotonic() + settings.kafka.connect_timeout_s
        await wait_for_cluster(settings.kafka, deadline)
        created, sizing["max_request_size"] = await retry_until(
            deadline,
            "provisioning topics",
            lambda: provision(settings.kafka, settings.topics, retry_topic=settings.retry.topic_enabled),
        )
        if created:
            logger.info("created topics: %s", ", ".join(created))
        await retry_until(deadline, "starting the producer", sink.start)
        prepared.set()

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


def tune_garbage_collector() -> None:
    """Once started: what start-up built lives until exit, so the collector stops scanning it.

    Without this a full collection walks every module, model and client object, ~100 ms each on
    the bench machine, a dozen times a minute under load: CPU lost and a latency spike each time.
    Fewer young-generation passes suit a service that allocates a few short-lived objects per record.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _end_offset(observed: Observability, pipeline: DeliveryPipeline, tp: TopicPartition) -> int | None:
    consumer = pipeline.consumer()
    return None if consumer is None else observed.metrics.end_offset(consumer, tp)
