"""One subscription's pipeline: the order handler inside the dead-letter guard, and the delivery
engine with the at-least-once or exactly-once guarantee around it."""

from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer
from opentelemetry.sdk.trace import TracerProvider

from kafka_delivery.engine import DeliveryEngine, EngineSettings, Guarantee
from kafka_delivery.guarantees import AtLeastOnce, ExactlyOnce, PartitionProducers
from kafka_delivery.handlers import DeadLetterGuard, DelayGate, RecordTracing, RetryTopic
from kafka_delivery.operations import PipelineMetrics
from kafka_delivery.types import RecordHandler, RecordSink
from order_service.adapters.connection import ProducerFactory
from order_service.settings import DeadLetterSettings, RetrySettings, Settings, TopicSettings


def guard_with_dead_letters(
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
    """`handler` with blocking retries, then the retry topic or the dead-letter topic, for its
    failures: one bad record fails alone."""
    if tracer_provider is not None:
        # Inside the guard: a dead letter keeps the input's own trace headers.
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


def build_guarantee(
    settings: Settings, *, sink: RecordSink, producers: ProducerFactory, group_id: str
) -> Guarantee:
    """At-least-once through the shared sink, or exactly-once through a producer per partition."""
    delivery = settings.delivery
    if delivery.guarantee == "at_least_once":
        return AtLeastOnce(sink)
    return ExactlyOnce(
        PartitionProducers(
            lambda txn_id: producers(
                transactional_id=txn_id, transaction_timeout_ms=delivery.transaction_timeout_ms
            ),
            # The group id is the application id: instances of one application share it.
            app_id=group_id,
            topics=settings.topics.written(retry_topic=settings.retry.topic_enabled),
            linger_ms=settings.producer.linger_ms,
        ),
        group_id=group_id,
        commit_interval_ms=delivery.commit_interval_ms,
        commit_timeout_ms=delivery.commit_timeout_ms,
    )


def build_engine(
    settings: Settings,
    handle: RecordHandler,
    guarantee: Guarantee,
    *,
    metrics: PipelineMetrics,
    consumer: Callable[[], AIOKafkaConsumer | None],
    delayed: bool,
) -> DeliveryEngine:
    """The engine for one subscriber; `delayed` ones wait for each record's retry due time."""
    delivery, processing = settings.delivery, settings.processing
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
            # Effects wait for their batch's transaction: records run in tasks then.
            eager=not processing.awaits() and not settings.effects.enabled,
        ),
        gate=DelayGate() if delayed else None,
        consumer=consumer,
    )
