"""What both delivery pipelines hold, whatever the guarantee."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from order_service.messaging.backoff import PartitionBackoff
from order_service.messaging.metrics import PipelineMetrics
from order_service.messaging.records import RecordHandler
from order_service.messaging.retry import DelayGate


def _no_consumer() -> AIOKafkaConsumer | None:
    return None


@dataclass(frozen=True, slots=True)
class PipelineParts:
    """The parts of a pipeline that do not depend on the guarantee."""

    handle: RecordHandler
    metrics: PipelineMetrics
    # First backoff of a partition after a failed publish or commit; doubles up to the ceiling.
    backoff_ms: int = 500
    max_backoff_ms: int = 30_000
    # Only on the delayed retry topic: holds records until they are due.
    gate: DelayGate | None = None
    # The subscriber's consumer once it exists; None under FastStream's in-memory test broker.
    consumer: Callable[[], AIOKafkaConsumer | None] = _no_consumer


class PipelineBase:
    """The parts, the committed offsets, per-partition backoff and the in-flight lock."""

    def __init__(self, parts: PipelineParts) -> None:
        self._handle = parts.handle
        self._gate = parts.gate
        self._metrics = parts.metrics
        self._backoff_ms = parts.backoff_ms
        self._max_backoff_ms = parts.max_backoff_ms
        # The last offset committed per partition (for the lag metric).
        self.committed: dict[TopicPartition, int] = {}
        self.backoff = PartitionBackoff(
            metrics=parts.metrics, base_ms=parts.backoff_ms, max_ms=parts.max_backoff_ms
        )
        # Held while a batch is in flight; a rebalance waits on it before giving partitions away.
        self.in_flight = asyncio.Lock()
        self.consumer = parts.consumer
