"""At-least-once batch processing: commit each partition only past outputs the broker has acked."""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from order_service.messaging.context import current_record
from order_service.messaging.metrics import PipelineMetrics
from order_service.messaging.rebalance import DrainBeforeRevoke
from order_service.messaging.records import (
    InputRecord,
    RecordHandler,
    RecordSink,
    group_by_partition,
)
from order_service.messaging.retry import DelayGate

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _PartitionProgress:
    sent: list[tuple[int, list[Awaitable[Any]]]] = field(default_factory=list)
    failed_at: int | None = None
    commit_offset: int | None = None
    held: InputRecord | None = None


class BatchPipeline:
    """Runs each record of a batch through the handler, awaits the acks, then commits per partition.

    A record whose output is not acked is neither committed nor skipped: its partition is
    rewound to it and it is processed again after a backoff. Later records of that partition
    in the same batch are not sent, so outputs stay in input order.
    """

    def __init__(
        self,
        handle: RecordHandler,
        sink: RecordSink,
        *,
        metrics: PipelineMetrics,
        retry_backoff_ms: int = 500,
        max_retry_backoff_ms: int = 30_000,
        gate: DelayGate | None = None,
    ) -> None:
        self._handle = handle
        self._gate = gate
        self._metrics = metrics
        # The last offset this pipeline committed, per partition (for the lag metric).
        self.committed: dict[TopicPartition, int] = {}
        self._sink = sink
        self._retry_backoff_ms = retry_backoff_ms
        self._max_retry_backoff_ms = max_retry_backoff_ms
        self._consecutive_failures = 0
        # Held while a batch is in flight; a rebalance waits on it before giving partitions away.
        self.in_flight = asyncio.Lock()
        # The subscriber's consumer; None only under FastStream's in-memory test broker.
        self.consumer: Callable[[], AIOKafkaConsumer | None] = lambda: None

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        return DrainBeforeRevoke(self.in_flight)

    async def close(self) -> None:
        """Nothing is left open between batches in this mode."""

    async def process(self, records: Sequence[InputRecord]) -> None:
        """Process one fetched batch and commit what was acked."""
        consumer = self.consumer()
        started = time.monotonic()
        async with self.in_flight:
            progress = {tp: await self._send(recs) for tp, recs in group_by_partition(records).items()}
            await self._settle(progress)
            if consumer is None:
                return
            committed = await self._commit(consumer, progress)
            failed = self._rewind(consumer, progress)
        self._metrics.batch_done(records, started)
        if failed or not committed:
            await self._back_off()
        else:
            self._consecutive_failures = 0

    async def _send(self, records: list[InputRecord]) -> _PartitionProgress:
        progress = _PartitionProgress()
        if self._gate is not None:
            records, progress.held = self._gate.split(records)
        for record in records:
            current_record.set(record)
            try:
                outputs = await self._handle(record)
                acks = [await self._sink.send(out) for out in outputs]
            except Exception:
                logger.exception(
                    "could not hand record %s-%s@%s to the producer; it will be retried",
                    record.topic,
                    record.partition,
                    record.offset,
                )
                progress.failed_at = record.offset
                break
            progress.sent.append((record.offset, acks))
        return progress

    async def _settle(self, progress: dict[TopicPartition, _PartitionProgress]) -> None:
        acks = [ack for p in progress.values() for _, record_acks in p.sent for ack in record_acks]
        await asyncio.gather(*acks, return_exceptions=True)
        for tp, p in progress.items():
            for offset, record_acks in p.sent:
                error = next((e for a in record_acks if (e := _failure(a)) is not None), None)
                if error is not None:
                    self._metrics.publish_failures.inc()
                    logger.error("output of %s@%s was not acked: %r; it will be retried", tp, offset, error)
                    p.failed_at = offset
                    break
                p.commit_offset = offset + 1

    async def _commit(
        self, consumer: AIOKafkaConsumer, progress: dict[TopicPartition, _PartitionProgress]
    ) -> bool:
        offsets = {tp: p.commit_offset for tp, p in progress.items() if p.commit_offset is not None}
        if not offsets:
            return True
        try:
            await consumer.commit(offsets)
        except Exception:
            self._metrics.commit_failures.inc()
            logger.exception("offset commit failed; the uncommitted records will be processed again")
            await _seek_to_committed(consumer, list(offsets))
            return False
        self.committed.update(offsets)
        return True

    def _rewind(self, consumer: AIOKafkaConsumer, progress: dict[TopicPartition, _PartitionProgress]) -> bool:
        assigned = consumer.assignment()
        failed = {tp: p.failed_at for tp, p in progress.items() if p.failed_at is not None}
        for tp, offset in failed.items():
            if tp in assigned:
                consumer.seek(tp, offset)
        for tp, p in progress.items():
            if self._gate is not None and p.held is not None and tp not in failed and tp in assigned:
                self._gate.hold(consumer, p.held)
        return bool(failed)

    async def _back_off(self) -> None:
        self._consecutive_failures += 1
        ceiling = min(
            self._max_retry_backoff_ms,
            self._retry_backoff_ms * 2 ** min(self._consecutive_failures - 1, 16),
        )
        await asyncio.sleep(random.uniform(ceiling / 2, ceiling) / 1000)


def _failure(ack: Awaitable[Any]) -> BaseException | None:
    future = asyncio.ensure_future(ack)
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception()


async def _seek_to_committed(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    assigned = [tp for tp in partitions if tp in consumer.assignment()]
    if not assigned:
        return
    try:
        await consumer.seek_to_committed(*assigned)
    except Exception:
        # Nothing is lost: outputs were acked, and the next successful commit covers these records.
        logger.exception("could not rewind to the committed offsets")
