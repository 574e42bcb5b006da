"""Pipeline metrics as a scrape shows them: consumer lag per partition, batch histograms."""

import functools
import time

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from order_service.messaging.health import GroupMembership
from order_service.messaging.metrics import PipelineMetrics
from tests.support.fakes import FakeConsumer, record, sample

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


def test_a_batch_records_its_size_duration_and_end_to_end_latency() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, "t")
    now_ms = int(time.time() * 1000)
    batch = [record(offset=0, timestamp=now_ms - 2_000), record(offset=1, timestamp=now_ms - 4_000)]

    metrics.batch_done(batch, started=time.monotonic() - 0.5)

    assert sample(registry, "t_batch_size_records_sum") == 2
    assert (sample(registry, "t_batch_processing_seconds_sum") or 0) >= 0.5
    assert sample(registry, "t_end_to_end_latency_seconds_count") == 2
    assert 6 <= (sample(registry, "t_end_to_end_latency_seconds_sum") or 0) < 6 + 10
    # A record stamped in the future (clock skew) counts as no latency, not a negative one.
    metrics.batch_done([record(timestamp=now_ms + 60_000)], started=time.monotonic())
    assert sample(registry, "t_end_to_end_latency_seconds_bucket", le="0.001") == 1
