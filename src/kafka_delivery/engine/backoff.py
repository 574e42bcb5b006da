"""Per-partition backoff after a failed publish, and partitions blocked by a refusal that will not pass."""

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from kafka_delivery.operations.metrics import PipelineMetrics

logger = logging.getLogger(__name__)
_REFUSALS: dict[type[BaseException], str] = {
    MessageSizeTooLargeError: "record_too_large",
    RecordTooLargeError: "record_too_large",
    RecordListTooLargeError: "record_too_large",
    TopicAuthorizationFailedError: "not_authorized",
    ClusterAuthorizationFailedError: "not_authorized",
    GroupAuthorizationFailedError: "not_authorized",
    TransactionalIdAuthorizationFailed: "not_authorized",
}
# Every reason a refusal can have: each has its series from the start (see PartitionBackoff).
REFUSAL_REASONS = tuple(dict.fromkeys(_REFUSALS.values()))


def refusal(exc: BaseException) -> str | None:
    """Why the broker (or the client, for size) will refuse this publish however often it is retried."""
    return next((reason for kind, reason in _REFUSALS.items() if isinstance(exc, kind)), None)


@dataclass(frozen=True, slots=True)
class Block:
    offset: int
    reason: str
    error: str
    since: float


class PartitionBackoff:
    """Rewinds a failed partition to its first unfinished record and pauses it for a growing delay.

    The other partitions keep flowing. Refusals that retrying cannot fix (too large, not authorized)
    also mark the partition blocked: an ERROR line, a gauge and a counter, until it moves past.

    Both metrics have their series before the first refusal, so that Prometheus sees the first one
    as an increase (a series that appears at 1 is no increase): the counter one per reason from the
    start, the gauge one per reason and assigned partition (`assigned`), 0 while it is not blocked.
    """

    def __init__(self, *, metrics: PipelineMetrics, base_ms: int, max_ms: int) -> None:
        self._metrics = metrics
        self._base_ms = base_ms
        self._max_ms = max_ms
        self._failures: dict[TopicPartition, int] = {}
        self._timers: dict[TopicPartition, asyncio.TimerHandle] = {}
        self.blocked: dict[TopicPartition, Block] = {}
        self._assigned: set[TopicPartition] = set()
        for reason in REFUSAL_REASONS:
            metrics.publish_refusals.labels(reason)

    def assigned(self, partitions: set[TopicPartition]) -> None:
        """Newly assigned partitions: their blocked series, 0 for every reason but a block's own."""
        self._assigned |= partitions
        for tp in partitions:
            block = self.blocked.get(tp)
            for reason in REFUSAL_REASONS:
                blocked = block is not None and block.reason == reason
                self._metrics.blocked.labels(tp.topic, str(tp.partition), reason).set(int(blocked))

    def failed(self, consumer: Any, tp: TopicPartition, offset: int, exc: BaseException) -> None:
        failures = self._failures[tp] = self._failures.get(tp, 0) + 1
        if (reason := refusal(exc)) is not None:
            self._block(tp, offset, reason, exc)
        if consumer is None or tp not in consumer.assignment():
            return
        consumer.seek(tp, offset)
        consumer.pause(tp)
        ceiling = min(self._max_ms, self._base_ms * 2 ** min(failures - 1, 16))
        delay = random.uniform(ceiling / 2, ceiling) / 1000
        if (timer := self._timers.pop(tp, None)) is not None:
            timer.cancel()
        self._timers[tp] = asyncio.get_running_loop().call_later(delay, self._resume, consumer, tp)

    def succeeded(self, tp: TopicPartition, committed: int) -> None:
        """The partition committed up to `committed`: it is no longer failing, nor blocked before it."""
        self._failures.pop(tp, None)
        block = self.blocked.get(tp)
        if block is not None and committed > block.offset:
            self._unblock(tp, block)
            logger.info(
                "partition %s-%s moved past offset %d after %.0fs blocked",
                tp.topic,
                tp.partition,
                block.offset,
                time.monotonic() - block.since,
            )

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Revoked partitions: their next owner starts afresh, and their series go away."""
        for tp in partitions:
            self._failures.pop(tp, None)
            self._assigned.discard(tp)
            if (timer := self._timers.pop(tp, None)) is not None:
                timer.cancel()
            if (block := self.blocked.get(tp)) is not None:
                self._unblock(tp, block)
            for reason in REFUSAL_REASONS:
                self._metrics.blocked.remove(tp.topic, str(tp.partition), reason)

    def _block(self, tp: TopicPartition, offset: int, reason: str, exc: BaseException) -> None:
        self._metrics.publish_refusals.labels(reason).inc()
        known = self.blocked.get(tp)
        if known is not None and (known.offset, known.reason) == (offset, reason):
            return
        if known is not None:
            self._unblock(tp, known)
        self.blocked[tp] = Block(offset, reason, type(exc).__name__, time.monotonic())
        self._metrics.blocked.labels(tp.topic, str(tp.partition), reason).set(1)
        logger.error(
            "partition %s-%s is blocked at offset %d: the broker refuses its output (%s: %s); "
            "nothing past it is committed until the cause is fixed",
            tp.topic,
            tp.partition,
            offset,
            reason,
            type(exc).__name__,
            extra={"blocked_topic": tp.topic, "blocked_partition": tp.partition, "blocked_offset": offset},
        )

    def _unblock(self, tp: TopicPartition, block: Block) -> None:
        """Back to 0 while the partition is assigned here; a partition never assigned loses its series."""
        del self.blocked[tp]
        if tp in self._assigned:
            self._metrics.blocked.labels(tp.topic, str(tp.partition), block.reason).set(0)
        else:
            self._metrics.blocked.remove(tp.topic, str(tp.partition), block.reason)

    def _resume(self, consumer: Any, tp: TopicPartition) -> None:
        self._timers.pop(tp, None)
        if tp in consumer.assignment():
            consumer.resume(tp)
