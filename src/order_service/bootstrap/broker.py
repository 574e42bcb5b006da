"""The FastStream broker: one batch subscriber per subscribed topic, each with its own pipeline and
group membership, and the output channels for the AsyncAPI document."""

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy

from kafka_delivery.effects import EffectBatches
from kafka_delivery.engine import DeliveryEngine
from kafka_delivery.faststream import decode_raw_batch, parse_raw_batch
from kafka_delivery.operations import GroupMembership
from kafka_delivery.types import InputRecord, RecordSink
from order_service.adapters.connection import ProducerFactory, build_security
from order_service.adapters.observability import Observability
from order_service.bootstrap.pipelines import build_engine, build_guarantee, guard_with_dead_letters
from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.orders import OrderHandler, order_handler
from order_service.processing import Processor
from order_service.settings import ConsumerSettings, Settings, TopicSettings

CLIENT_OPTIONS = {
    "batch_timeout_ms",
    "fetch_min_bytes",
    "fetch_max_wait_ms",
    "auto_offset_reset",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "max_poll_interval_ms",
}


@dataclass(frozen=True)
class Subscription:
    """One subscribed topic: its consumer group, its pipeline, its group membership and its
    FastStream subscriber, which holds the consumer once the broker has started."""

    topic: str
    group: str
    pipeline: DeliveryEngine
    membership: GroupMembership
    subscriber: Any

    def consumer(self) -> AIOKafkaConsumer | None:
        consumer: AIOKafkaConsumer | None = self.subscriber.consumer
        return consumer


def create_broker(
    settings: Settings,
    observed: Observability,
    *,
    sink: RecordSink,
    producers: ProducerFactory,
    processor: Processor,
    effects: EffectBatches | None,
) -> tuple[KafkaBroker, list[Subscription]]:
    """The broker with a subscription for the input topic, and for the delayed retry topic when
    it is enabled: the same parts for each."""
    kafka, topics, consumer = settings.kafka, settings.topics, settings.consumer
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
        # Handlers get the raw records of a batch: see `subscribe`.
        apply_types=False,
        middlewares=middlewares,
        logger=logging.getLogger("order_service.broker"),
        # FastStream's per-batch "Received"/"Processed" lines are debug detail here.
        log_level=logging.DEBUG,
    )
    router = KafkaRouter()
    subscribed = [(topics.input, consumer.group_id, False)]
    if settings.retry.topic_enabled:
        subscribed.append((topics.retry, consumer.retry_group_id, True))
    subscriptions = [
        _subscription(
            settings,
            router,
            observed,
            # Per subscription: the inbox keys records by their consumer group.
            order_handler(
                settings.processing,
                settings.orders,
                output_topic=topics.output,
                outcomes=observed.orders,
                processor=processor,
                effects=effects,
                group_id=at[1],
            ),
            sink=sink,
            producers=producers,
            at=at,
        )
        for at in subscribed
    ]
    document_outputs(router, topics, retry_topic=settings.retry.topic_enabled)
    broker.include_router(router)
    return broker, subscriptions


def _subscription(
    settings: Settings,
    router: KafkaRouter,
    observed: Observability,
    orders: OrderHandler,
    *,
    sink: RecordSink,
    producers: ProducerFactory,
    at: tuple[str, str, bool],
) -> Subscription:
    topic, group, delayed = at
    metrics = observed.metrics
    handle = guard_with_dead_letters(
        orders,
        topics=settings.topics,
        retry=settings.retry,
        dead_letter=settings.dead_letter,
        group_id=group,
        metrics=metrics,
        tracer_provider=observed.tracer_provider,
        secrets=settings.secret_values(),
    )
    guarantee = build_guarantee(settings, sink=sink, producers=producers, group_id=group)
    # FastStream makes the consumer when the broker starts, on the subscriber made below: the engine
    # asks the subscriber for it then. The one late binding that FastStream's API leaves.
    pipeline = build_engine(
        settings, handle, guarantee, metrics=metrics, consumer=lambda: subscriber.consumer, delayed=delayed
    )
    membership = GroupMembership(
        metrics,
        group,
        on_assigned=pipeline.assigned,
        on_revoked=pipeline.revoked,
        baseline=functools.partial(metrics.baseline, group),
    )
    subscriber = subscribe(
        router, settings.consumer, topic=topic, group_id=group, listener=membership, process=pipeline.process
    )
    metrics.watch_lag(group, pipeline.consumer, pipeline.committed)
    metrics.watch_flow(group, pipeline.flow)
    return Subscription(topic, group, pipeline, membership, subscriber)


def subscribe(
    router: KafkaRouter,
    consumer: ConsumerSettings,
    *,
    topic: str,
    group_id: str,
    listener: ConsumerRebalanceListener,
    process: Callable[[Sequence[InputRecord]], Awaitable[None]],
) -> Any:
    """One batch subscriber on `topic` that hands every fetched batch to `process`."""
    # MANUAL: the pipeline commits each partition only once its outputs are acked.
    # ACK_FIRST would commit before processing, ACK would commit failures as if done.
    subscriber = router.subscriber(
        topic,
        group_id=group_id,
        group_instance_id=consumer.instance_id(topic),
        batch=True,
        max_records=consumer.max_batch_records,
        # Settings named as FastStream and aiokafka name them, passed on as they are.
        **consumer.model_dump(include=CLIENT_OPTIONS),
        # Outputs of the exactly-once mode, and of transactional upstreams, count once committed.
        isolation_level="read_committed",
        ack_policy=AckPolicy.MANUAL,
        listener=listener,
        parser=parse_raw_batch,
        decoder=decode_raw_batch,
        description="OrderCreated events, JSON; malformed records go to the dead-letter topic.",
    )

    # The payload annotation documents the channel (AsyncAPI). The broker does not apply types:
    # the raw decoder hands over the fetched records as they are, and the pipeline decodes them
    # one by one so that a bad record fails alone.
    async def on_orders_created(orders: list[OrderCreated]) -> None:
        await process(orders)

    subscriber(on_orders_created)
    return subscriber


def document_outputs(router: KafkaRouter, topics: TopicSettings, *, retry_topic: bool) -> None:
    """The output channels, for the AsyncAPI document only.

    The delivery layer's own producer sends these records: FastStream publishers rewrite headers
    and have no transactions.
    """
    router.publisher(
        topics.output, schema=OrderProcessed, description="One outcome per order, keyed by order_id."
    )
    router.publisher(
        topics.dead_letter,
        description="Input records that could not be processed: original key, bytes and headers, "
        "plus the dlq.* envelope headers (docs/dead-letter-envelope.md).",
    )
    if retry_topic:
        router.publisher(topics.retry, description="Input records waiting for a delayed retry.")
