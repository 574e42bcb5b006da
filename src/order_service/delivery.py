"""Builds each subscription's delivery: the order handler inside the dead-letter middleware, the
delivery engine with the at-least-once or exactly-once strategy around it, and the group membership
that watches it."""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.sdk.trace import TracerProvider

from kafka_delivery.engine import DeliveryEngine, EngineSettings, Guarantee
from kafka_delivery.guarantees import AtLeastOnce, ExactlyOnce, PartitionProducers
from kafka_delivery.handlers import DeadLetterGuard, DelayGate, RecordTracing, RetryTopic
from kafka_delivery.operations import GroupMembership, PipelineMetrics
from kafka_delivery.types import DeliveryPipeline, RecordHandler, RecordSink
from order_service.adapters.connection import build_producer
from order_service.adapters.observability import Observability
from order_service.orders import order_handler
from order_service.settings import (
    DeadLetterSettings,
    RetrySettings,
    Settings,
    TopicSettings,
)


def dead_letter_middleware(
    handler: RecordHandler,
    *,
    topics: TopicSettings,
    retry: RetrySettings,
    dead_letter: DeadLetterSettings,
    group_id: str,
    metrics: PipelineMetrics,
    tracer_provider: TracerProvider | None,
    secrets: Sequence[str],
) -> DeadLetterGuard:
    if tracer_provider is not None:
        # Inside the DLQ middleware: a dead letter keeps the input's own trace headers.
        handler = RecordTracing(handler, tracer_provider.get_tracer("order_service"))
    return DeadLetterGuard(
        handler,
        topic=topics.dead_letter,
        group_id=group_id,
        metrics=metrics,
        retry=retry.policy(),
        retry_topic=(
            RetryTopic(topics.retry, hops=retry.topic_hops, delay_ms=retry.topic_delay_ms)
            if retry.topic_enabled
            else None
        ),
        secrets=secrets,
        max_message_chars=dead_letter.max_error_message_chars,
    )


def build_pipeline(
    settings: Settings,
    handle: RecordHandler,
    *,
    sink: RecordSink,
    new_producer: Callable[..., AIOKafkaProducer],
    group_id: str,
    metrics: PipelineMetrics,
    consumer: Callable[[], AIOKafkaConsumer | None],
    delayed: bool,
) -> DeliveryEngine:
    """The engine for one subscriber, with the configured guarantee; `delayed` ones wait for each
    record's retry due time."""
    delivery, processing = settings.delivery, settings.processing
    guarantee: Guarantee
    if delivery.guarantee == "exactly_once":
        producers = PartitionProducers(
            lambda txn_id: new_producer(
                transactional_id=txn_id, transaction_timeout_ms=delivery.transaction_timeout_ms
            ),
            # The group id is the application id: instances of one application share it.
            app_id=group_id,
            topics=settings.topics.written(retry_topic=settings.retry.topic_enabled),
            linger_ms=settings.producer.linger_ms,
        )
        guarantee = ExactlyOnce(
            producers,
            group_id=group_id,
            commit_interval_ms=delivery.commit_interval_ms,
            commit_timeout_ms=delivery.commit_timeout_ms,
        )
    else:
        guarantee = AtLeastOnce(sink)
    return DeliveryEngine(
        handle,
        guarantee,
        metrics=metrics,
        settings=EngineSettings(
            ordering=processing.ordering,
            max_in_flight=processing.max_in_flight,
            max_buffered=processing.max_buffered_per_partition,
            drain_timeout_s=processing.drain_timeout_s,
            backoff_ms=delivery.backoff_ms,
            max_backoff_ms=delivery.max_backoff_ms,
            commit_interval_ms=delivery.commit_interval_ms,
            eager=not processing.awaits(),
        ),
        gate=DelayGate() if delayed else None,
        consumer=consumer,
    )


@dataclass
class Subscription:
    """One subscribed topic: its consumer group, its pipeline and its group membership."""

    topic: str
    group: str
    pipeline: DeliveryPipeline
    membership: GroupMembership
    # Filled when FastStream creates the subscriber: the pipeline reads its consumer through it.
    subscriber: list[Any] = field(default_factory=list)

    def consumer(self) -> Any:
        return self.subscriber[0].consumer if self.subscriber else None


def build_subscriptions(
    settings: Settings, sink: RecordSink, observed: Observability, sizing: dict[str, int]
) -> list[Subscription]:
    """The input topic, and the delayed retry topic when enabled: the same parts for each."""
    topics, consumer = settings.topics, settings.consumer
    subscribed = [(topics.input, consumer.group_id, False)]
    if settings.retry.topic_enabled:
        subscribed.append((topics.retry, consumer.retry_group_id, True))
    orders = order_handler(
        settings.processing, settings.orders, output_topic=topics.output, outcomes=observed.orders
    )
    subscriptions = []
    for topic, group, delayed in subscribed:
        handle = dead_letter_middleware(
            orders,
            topics=topics,
            retry=settings.retry,
            dead_letter=settings.dead_letter,
            group_id=group,
            metrics=observed.metrics,
            tracer_provider=observed.tracer_provider,
            secrets=settings.secret_values(),
        )
        slot: list[Any] = []
        pipeline = build_pipeline(
            settings,
            handle,
            sink=sink,
            new_producer=lambda **extra: build_producer(settings.kafka, settings.producer, **sizing, **extra),
            group_id=group,
            metrics=observed.metrics,
            consumer=lambda slot=slot: slot[0].consumer if slot else None,  # type: ignore[misc]
            delayed=delayed,
        )
        membership = GroupMembership(
            observed.metrics,
            group,
            inner=pipeline.rebalance_listener(),
            baseline=functools.partial(observed.metrics.baseline, group),
        )
        observed.metrics.watch_lag(group, pipeline.consumer, pipeline.committed)
        observed.metrics.watch_flow(group, pipeline.flow)
        subscriptions.append(Subscription(topic, group, pipeline, membership, slot))
    return subscriptions
