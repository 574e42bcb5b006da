import asyncio
import logging

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter

from kafka_delivery.operations.stalls import StallMonitor

TP = TopicPartition("in", 0)
GROUP = "g"


class Partitions:
    """A fake consumer: assigned partitions, their log ends and the committed offsets, with a clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.assigned = {TP}
        self.ends: dict[TopicPartition, int | None] = {TP: 50}
        self.committed: dict[TopicPartition, int] = {TP: 10}
        self.registry = CollectorRegistry()
        self.stalls = Counter("stalls", "stalls", ["group"], registry=self.registry)
        self.monitor = StallMonitor(
            group=GROUP,
            assignment=lambda: self.assigned,
            end_offset=self.ends.get,
            committed=self.committed,
            stall_after_s=30,
            stalls=self.stalls,
            clock=lambda: self.now,
        )

    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.monitor.check()

    def count(self) -> float:
        return self.registry.get_sample_value("stalls_total", {"group": GROUP}) or 0.0


@pytest.fixture
def parts(caplog: pytest.LogCaptureFixture) -> Partitions:
    caplog.set_level(logging.INFO, logger="kafka_delivery.operations.stalls")
    return Partitions()


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "kafka_delivery.operations.stalls"]


def levels(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [r.levelno for r in records(caplog)]


def test_a_partition_behind_without_commits_stalls_once(
    parts: Partitions, caplog: pytest.LogCaptureFixture
) -> None:
    parts.tick(0)
    parts.tick(29)
    assert parts.count() == 0

    parts.tick(2)

    assert parts.count() == 1
    assert levels(caplog) == [logging.WARNING]
    (warning,) = records(caplog)
    assert (warning.topic, warning.partition, warning.lag) == ("in", 0, 40)  # type: ignore[attr-defined]
    assert parts.monitor.stalled() == {TP: pytest.approx(31)}


def test_a_stalled_partition_is_reported_only_once(
    parts: Partitions, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(20):
        parts.tick(10)

    assert parts.count() == 1
    assert levels(caplog) == [logging.WARNING]
    assert parts.monitor.stalled()[TP] >= 190


def test_a_commit_recovers_a_stalled_partition(parts: Partitions, caplog: pytest.LogCaptureFixture) -> None:
    parts.tick(0)
    parts.tick(40)
    parts.committed[TP] = 20

    parts.tick(5)

    assert levels(caplog) == [logging.WARNING, logging.INFO]
    assert parts.monitor.stalled() == {}
    assert parts.count() == 1


def test_catching_up_recovers_a_stalled_partition(
    parts: Partitions, caplog: pytest.LogCaptureFixture
) -> None:
    parts.tick(0)
    parts.tick(40)
    parts.ends[TP] = 10

    parts.tick(5)

    assert levels(caplog) == [logging.WARNING, logging.INFO]


def test_a_partition_without_lag_never_stalls(parts: Partitions, caplog: pytest.LogCaptureFixture) -> None:
    parts.committed[TP] = 50
    for _ in range(20):
        parts.tick(60)

    assert parts.count() == 0
    assert levels(caplog) == []


def test_a_record_after_a_quiet_hour_is_not_a_stall(parts: Partitions) -> None:
    parts.committed[TP] = 50
    parts.tick(0)
    parts.tick(3600)
    parts.ends[TP] = 51

    parts.tick(1)

    assert parts.count() == 0


def test_a_revoked_stalled_partition_is_forgotten_silently(
    parts: Partitions, caplog: pytest.LogCaptureFixture
) -> None:
    parts.tick(0)
    parts.tick(40)
    parts.assigned = set()

    parts.tick(1)

    assert parts.monitor.stalled() == {}
    assert levels(caplog) == [logging.WARNING]


def test_without_a_commit_only_records_after_the_first_check_count(parts: Partitions) -> None:
    del parts.committed[TP]
    parts.tick(0)
    parts.tick(60)
    assert parts.count() == 0

    parts.ends[TP] = 55
    parts.tick(1)
    parts.tick(31)
    assert parts.count() == 1

    parts.committed[TP] = 30
    parts.tick(1)
    assert parts.monitor.stalled() == {}


def test_an_unknown_log_end_is_neither_stall_nor_recovery(parts: Partitions) -> None:
    parts.ends[TP] = None
    for _ in range(5):
        parts.tick(60)

    assert parts.count() == 0


async def test_run_checks_until_cancelled(parts: Partitions) -> None:
    task = asyncio.create_task(parts.monitor.run(0.001))
    await asyncio.sleep(0.01)
    parts.now += 31
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert parts.count() == 1


def test_a_rewound_commit_counts_as_activity(parts: Partitions) -> None:
    parts.tick(0)
    parts.tick(20)
    parts.committed[TP] = 5
    parts.tick(20)

    assert parts.count() == 0
