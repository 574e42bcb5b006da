"""Pipeline metrics as a scrape shows them: consumer lag per partition, batch histograms."""

import functools
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Histogram

from kafka_delivery.engine import DeliveryEngine
from kafka_delivery.engine.backoff import REFUSAL_REASONS
from kafka_delivery.errors import ErrorCategory
from kafka_delivery.guarantees.at_least_once import AtLeastOnce
from kafka_delivery.guarantees.exactly_once import ExactlyOnce
from kafka_delivery.guarantees.transactional_producers import PartitionProducers
from kafka_delivery.handlers.dead_letters import DeadLetterGuard
from kafka_delivery.handlers.retry import RetryPolicy
from kafka_delivery.operations.membership import GroupMembership
from kafka_delivery.operations.metrics import (
    CountsPerLabel,
    Distribution,
    Flow,
    PartitionFlow,
    PipelineMetrics,
)
from kafka_delivery.operations.stalls import StallMonitor
from kafka_delivery.types import OutgoingRecord
from tests.support.fakes import FakeConsumer, FakeKafka, FakeSink, sample

GROUP = "g"
TP0 = TopicPartition("in", 0)
TP1 = TopicPartition("in", 1)


def lag(registry: CollectorRegistry, tp: TopicPartition) -> float | None:
    return sample(
        registry, "t_consumer_lag_records", group=GROUP, topic=tp.topic, partition=str(tp.partition)
    )


async def test_lag_has_a_series_from_assignment_on_and_follows_fetches_and_commits() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, "t")
    consumer = FakeConsumer(beginning={TP0: 3, TP1: 0}, committed={TP1: 4}, ends={TP0: 10, TP1: 9})
    committed: dict[TopicPartition, int] = {}  # the pipeline's record of its commits
    metrics.watch_lag(GROUP, lambda: consumer, committed)
    membership = GroupMembership(metrics, GROUP, baseline=functools.partial(metrics.baseline, GROUP))

    consumer.assigned = {TP0, TP1}
    await membership.on_partitions_assigned({TP0, TP1})

    # Never committed: measured from the log start. Committed: from the committed offset.
    assert (lag(registry, TP0), lag(registry, TP1)) == (7, 5)

    consumer.highwaters[TP0] = 12  # a fetch saw a newer log end
    assert lag(registry, TP0) == 9
    committed[TP0] = 12
    assert lag(registry, TP0) == 0

    consumer.assigned = {TP1}  # revoked: its series goes away
    assert lag(registry, TP0) is None
    assert lag(registry, TP1) == 5


async def test_the_end_offset_is_the_last_high_watermark_or_the_one_read_at_assignment() -> None:
    metrics = PipelineMetrics(CollectorRegistry(), "t")
    consumer = FakeConsumer([TP0], ends={TP0: 10})
    metrics.watch_lag(GROUP, lambda: consumer, {})
    assert metrics.end_offset(consumer, TP0) is None
    await metrics.baseline(GROUP, {TP0})
    assert metrics.end_offset(consumer, TP0) == 10
    consumer.highwaters[TP0] = 15
    assert metrics.end_offset(consumer, TP0) == 15


async def test_without_a_consumer_there_is_no_lag_and_no_baseline() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, "t")
    committed: dict[TopicPartition, int] = {}
    metrics.watch_lag(GROUP, lambda: None, committed)
    await metrics.baseline(GROUP, {TP0})
    assert committed == {}
    assert lag(registry, TP0) is None


def test_the_flow_of_each_group_is_collected_per_partition_at_scrape_time() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, "t")
    flow = Flow(in_flight=3, partitions=[PartitionFlow(TP0, buffered=7, oldest_age_s=42.5, uncommitted=4)])
    metrics.watch_flow(GROUP, lambda: flow)
    labels = {"group": GROUP, "topic": TP0.topic, "partition": str(TP0.partition)}

    assert sample(registry, "t_records_in_flight", group=GROUP) == 3
    assert sample(registry, "t_buffered_records", **labels) == 7
    assert sample(registry, "t_oldest_unfinished_record_age_seconds", **labels) == 42.5
    assert sample(registry, "t_processed_uncommitted_records", **labels) == 4
    flow = Flow(in_flight=0)  # read again at the next scrape: the partition is gone
    assert sample(registry, "t_records_in_flight", group=GROUP) == 0
    assert sample(registry, "t_buffered_records", **labels) is None


def test_a_tally_is_a_counter_per_label_with_every_known_label_from_the_start() -> None:
    registry = CollectorRegistry()
    tally = CountsPerLabel("t_orders", "Orders", "status", ("processed", "rejected"), registry)
    assert sample(registry, "t_orders_total", status="rejected") == 0
    for status in ("processed", "processed", "other"):
        tally.inc(status)
    assert sample(registry, "t_orders_total", status="processed") == 2
    assert sample(registry, "t_orders_total", status="other") == 1


def test_a_distribution_is_a_histogram_as_prometheus_client_writes_one() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    distribution = Distribution("t_latency_seconds", "Latency", (0.01, 1, 5), ours)
    histogram = Histogram("t_latency_seconds", "Latency", buckets=(0.01, 1, 5), registry=theirs)
    for value in (0.0, 0.01, 0.5, 1.0, 3, 7, 100):
        distribution.observe(value)
        histogram.observe(value)
    for le in ("0.01", "1.0", "5.0", "+Inf"):
        assert sample(ours, "t_latency_seconds_bucket", le=le) == sample(
            theirs, "t_latency_seconds_bucket", le=le
        )
    assert sample(ours, "t_latency_seconds_count") == 7
    assert sample(ours, "t_latency_seconds_sum") == sample(theirs, "t_latency_seconds_sum")


async def echo(record: Any) -> list[OutgoingRecord]:
    return [OutgoingRecord(topic="out", key=record.key, value=record.value)]


async def test_every_labelled_series_exists_at_0_before_its_first_event() -> None:
    """Prometheus sees no increase in a series that appears with its first event: `increase(...) > 0`
    would miss the first stall, refusal or abort. Every label value known up front has its series
    from the start, made by whoever knows it (the group, the retry policy, the guarantee)."""
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, "t")
    consumer = FakeConsumer([TP0, TP1])
    GroupMembership(metrics, GROUP)
    StallMonitor(
        group=GROUP,
        assignment=lambda: (),
        end_offset=lambda tp: None,
        committed={},
        stall_after_s=60,
        stalls=metrics.stalls,
    )
    DeadLetterGuard(echo, topic="dlq", group_id=GROUP, metrics=metrics, retry=RetryPolicy(attempts=3))
    engine = DeliveryEngine(echo, AtLeastOnce(FakeSink()), metrics=metrics, consumer=lambda: consumer)
    transactional = DeliveryEngine(
        echo,
        ExactlyOnce(PartitionProducers(FakeKafka().build, app_id="app", topics=["out"]), group_id=GROUP),
        metrics=metrics,
    )

    assert sample(registry, "t_assigned_partitions", group=GROUP) == 0
    assert sample(registry, "t_partition_stalls_total", group=GROUP) == 0
    for category in ErrorCategory:
        assert sample(registry, "t_records_dead_lettered_total", category=category.value) == 0, category
    # Blocking retries of 3 attempts: retries 1 and 2; the third attempt is the last, not retried.
    assert [sample(registry, "t_retries_total", attempt=str(a)) for a in (1, 2, 3)] == [0, 0, None]
    for reason in REFUSAL_REASONS:
        assert sample(registry, "t_publish_refusals_total", reason=reason) == 0, reason
    for result in ("committed", "aborted"):
        assert sample(registry, "t_transactions_total", result=result) == 0, result

    # Blocked partitions: a series per assigned partition and reason, 0 until a refusal blocks it.
    def blocked(tp: TopicPartition, reason: str) -> float | None:
        return sample(
            registry, "t_blocked_partitions", topic=tp.topic, partition=str(tp.partition), reason=reason
        )

    assert blocked(TP0, "record_too_large") is None
    await engine.assigned({TP0, TP1})
    assert {blocked(tp, r) for tp in (TP0, TP1) for r in REFUSAL_REASONS} == {0}
    await engine.revoked({TP1})
    assert {blocked(TP1, r) for r in REFUSAL_REASONS} == {None}
    assert {blocked(TP0, r) for r in REFUSAL_REASONS} == {0}
    await engine.close()
    await transactional.close()
