"""Pipeline metrics as a scrape shows them: consumer lag per partition, batch histograms."""

import functools

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Histogram

from kafka_delivery.operations.membership import GroupMembership
from kafka_delivery.operations.metrics import (
    CountsPerLabel,
    Distribution,
    Flow,
    PartitionFlow,
    PipelineMetrics,
)
from tests.support.fakes import FakeConsumer, sample

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
