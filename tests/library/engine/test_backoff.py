"""PartitionBackoff: how long a failing partition pauses, and when a refusal blocks it."""

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from prometheus_client import CollectorRegistry

from kafka_delivery.engine import backoff as backoff_module
from kafka_delivery.engine.backoff import PartitionBackoff, refusal
from kafka_delivery.operations.metrics import PipelineMetrics
from tests.support.fakes import FakeConsumer, sample, wait_until

TP = TopicPartition("in", 0)
OTHER = TopicPartition("in", 1)


def make(base_ms: int, max_ms: int) -> tuple[PartitionBackoff, CollectorRegistry]:
    registry = CollectorRegistry()
    return PartitionBackoff(metrics=PipelineMetrics(registry, "t"), base_ms=base_ms, max_ms=max_ms), registry


class Jitter:
    """Stands in for random.uniform in the backoff module: records the bounds, waits almost nothing."""

    def __init__(self) -> None:
        self.bounds: list[tuple[float, float]] = []

    def __call__(self, low: float, high: float) -> float:
        self.bounds.append((low, high))
        return 0.001


@pytest.fixture
def jitter(monkeypatch: pytest.MonkeyPatch) -> Jitter:
    fake = Jitter()
    monkeypatch.setattr(backoff_module, "random", SimpleNamespace(uniform=fake))
    return fake


async def test_each_failure_doubles_the_pause_up_to_the_ceiling(jitter: Jitter) -> None:
    backoff, _ = make(base_ms=100, max_ms=1_000)
    consumer = FakeConsumer([TP])
    for _ in range(6):
        backoff.failed(consumer, TP, 5, KafkaTimeoutError())
    ceilings = [100, 200, 400, 800, 1_000, 1_000]
    assert jitter.bounds == [(c / 2, c) for c in ceilings]
    assert consumer.seeks == [(TP, 5)] * 6
    assert consumer.pauses == [TP] * 6


async def test_a_success_starts_the_doubling_again(jitter: Jitter) -> None:
    backoff, _ = make(base_ms=100, max_ms=1_000)
    consumer = FakeConsumer([TP, OTHER])
    backoff.failed(consumer, TP, 5, KafkaTimeoutError())
    backoff.failed(consumer, TP, 5, KafkaTimeoutError())
    backoff.failed(consumer, OTHER, 0, KafkaTimeoutError())  # counted per partition
    backoff.succeeded(TP, 6)
    backoff.failed(consumer, TP, 6, KafkaTimeoutError())
    assert [high for _, high in jitter.bounds] == [100, 200, 100, 100]


async def test_the_partition_is_paused_for_half_to_all_of_the_backoff_then_resumed() -> None:
    backoff, _ = make(base_ms=40, max_ms=40)
    consumer = FakeConsumer([TP, OTHER])

    failed_at = time.time()
    backoff.failed(consumer, TP, 7, NotLeaderForPartitionError())

    assert consumer.seeks == [(TP, 7)]
    assert consumer.paused == {TP}
    await wait_until(lambda: consumer.paused == set(), what="the resume")
    assert consumer.resumes == [TP]
    # Never before half the backoff (timers fire late on a busy machine, never early).
    assert consumer.resumed_at[TP] - failed_at >= 0.020 - 0.001


async def test_a_new_failure_replaces_the_pending_resume() -> None:
    backoff, _ = make(base_ms=10, max_ms=10)
    consumer = FakeConsumer([TP])
    backoff.failed(consumer, TP, 1, KafkaTimeoutError())
    backoff.failed(consumer, TP, 1, KafkaTimeoutError())
    await asyncio.sleep(0.05)
    assert consumer.resumes == [TP]


async def test_a_forgotten_partition_is_not_resumed_and_is_no_longer_blocked() -> None:
    backoff, registry = make(base_ms=10, max_ms=10)
    consumer = FakeConsumer([TP])
    backoff.failed(consumer, TP, 3, MessageSizeTooLargeError())
    assert sample(registry, "t_blocked_partitions", topic="in", partition="0", reason="record_too_large") == 1

    backoff.forget({TP})
    await asyncio.sleep(0.03)

    assert consumer.resumes == []
    assert backoff.blocked == {}
    assert (
        sample(registry, "t_blocked_partitions", topic="in", partition="0", reason="record_too_large") is None
    )


async def test_a_partition_revoked_before_its_resume_is_left_alone() -> None:
    backoff, _ = make(base_ms=10, max_ms=10)
    consumer = FakeConsumer([TP])
    backoff.failed(consumer, TP, 3, KafkaTimeoutError())
    consumer.assigned.clear()
    await asyncio.sleep(0.03)
    assert consumer.resumes == []


def test_without_a_consumer_or_an_assignment_a_refusal_still_blocks() -> None:
    backoff, registry = make(base_ms=10, max_ms=10)
    backoff.failed(None, TP, 3, TopicAuthorizationFailedError())
    backoff.failed(FakeConsumer([OTHER]), TP, 3, TopicAuthorizationFailedError())
    assert {tp: (b.offset, b.reason, b.error) for tp, b in backoff.blocked.items()} == {
        TP: (3, "not_authorized", "TopicAuthorizationFailedError")
    }
    assert sample(registry, "t_publish_refusals_total", reason="not_authorized") == 2


def test_a_commit_before_the_blocked_offset_keeps_the_block() -> None:
    backoff, registry = make(base_ms=10, max_ms=10)
    backoff.failed(None, TP, 3, MessageSizeTooLargeError())
    backoff.succeeded(TP, 3)
    assert TP in backoff.blocked
    backoff.succeeded(TP, 4)
    assert backoff.blocked == {}
    assert (
        sample(registry, "t_blocked_partitions", topic="in", partition="0", reason="record_too_large") is None
    )


@pytest.mark.parametrize(
    ("make_error", "reason"),
    [
        (MessageSizeTooLargeError, "record_too_large"),
        (RecordTooLargeError, "record_too_large"),
        (RecordListTooLargeError, "record_too_large"),
        (TopicAuthorizationFailedError, "not_authorized"),
        (ClusterAuthorizationFailedError, "not_authorized"),
        (GroupAuthorizationFailedError, "not_authorized"),
        (TransactionalIdAuthorizationFailed, "not_authorized"),
        (KafkaTimeoutError, None),
        (NotLeaderForPartitionError, None),
        (ConnectionError, None),
    ],
)
def test_refusals_are_the_errors_retrying_cannot_fix(
    make_error: Callable[[], BaseException], reason: str | None
) -> None:
    assert refusal(make_error()) == reason


def blocked(registry: CollectorRegistry, tp: TopicPartition, reason: str) -> float | None:
    return sample(
        registry, "t_blocked_partitions", topic=tp.topic, partition=str(tp.partition), reason=reason
    )


def test_every_refusal_reason_is_counted_from_zero_before_the_first_refusal() -> None:
    _, registry = make(base_ms=10, max_ms=10)
    assert {
        r: sample(registry, "t_publish_refusals_total", reason=r) for r in backoff_module.REFUSAL_REASONS
    } == {
        "record_too_large": 0,
        "not_authorized": 0,
    }
    assert set(backoff_module.REFUSAL_REASONS) == {refusal(kind()) for kind in backoff_module._REFUSALS}


def test_an_assigned_partition_has_a_blocked_series_per_reason_at_0_until_a_refusal_and_after_it() -> None:
    backoff, registry = make(base_ms=10, max_ms=10)
    backoff.assigned({TP, OTHER})
    assert [blocked(registry, tp, r) for tp in (TP, OTHER) for r in backoff_module.REFUSAL_REASONS] == [0] * 4

    backoff.failed(None, TP, 3, MessageSizeTooLargeError())
    assert (blocked(registry, TP, "record_too_large"), blocked(registry, TP, "not_authorized")) == (1, 0)
    backoff.failed(None, TP, 3, TopicAuthorizationFailedError())  # refused for another reason now
    assert (blocked(registry, TP, "record_too_large"), blocked(registry, TP, "not_authorized")) == (0, 1)
    backoff.succeeded(TP, 4)  # moved past it: still assigned, so back to 0 rather than gone
    assert (blocked(registry, TP, "record_too_large"), blocked(registry, TP, "not_authorized")) == (0, 0)

    backoff.failed(None, OTHER, 5, MessageSizeTooLargeError())
    backoff.forget({TP, OTHER})  # revoked: the next owner has the series
    assert [blocked(registry, tp, r) for tp in (TP, OTHER) for r in backoff_module.REFUSAL_REASONS] == [
        None
    ] * 4


def test_a_partition_assigned_again_while_blocked_keeps_its_block_in_the_gauge() -> None:
    backoff, registry = make(base_ms=10, max_ms=10)
    backoff.failed(None, TP, 3, RecordTooLargeError())
    backoff.assigned({TP})
    assert (blocked(registry, TP, "record_too_large"), blocked(registry, TP, "not_authorized")) == (1, 0)
