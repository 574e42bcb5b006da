"""At-least-once batch processing: commit each partition only past outputs the broker has acked."""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from order_service.messaging.backoff import PartitionBackoff, refusal
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
    error: BaseException | None = None
    commit_offset: int | None = None
    held: InputRecord | None = None


class BatchPipeline:
    """Runs each record of a batch through the handler, awaits the acks, then commits per partition.

    A record whose output is not acked is neither committed nor skipped: its partition is
    rewound to it, paused for a backoff, and the record processed again; other partitions go on.
    A record that cannot be handed to the producer stops its partition's batch there; after a failed
    ack, the later records already sent are sent again with it, so outputs keep input order (the
    repeats are at-least-once duplicates).
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
        consumer: Callable[[], AIOKafkaConsumer | None] = lambda: None,
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
        self.backoff = PartitionBackoff(
            metrics=metrics, base_ms=retry_backoff_ms, max_ms=max_retry_backoff_ms
        )
        # Held while a batch is in flight; a rebalance waits on it before giving partitions away.
        self.in_flight = asyncio.Lock()
        # The subscriber's consumer; None only under FastStream's in-memory test broker.
        # The subscriber's consumer once it exists; None under FastStream's in-memory test broker.
        self.consumer = consumer

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        return DrainBeforeRevoke(self.in_flight, on_revoked=self.backoff.forget)

    async def close(self) -> None:
        """Nothing is left open between batches in this mode."""

    def transactional_ids(self) -> list[str]:
        return []

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
            self._rewind(consumer, progress)
        self._metrics.batch_done(records, started)
        if not committed:
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
            except Exception as exc:  # noqa: BLE001 - the partition backs off and retries the record
                self._metrics.publish_failures.inc()
                _log_failure("could not hand record %s-%s@%s to the producer", record, exc)
                progress.failed_at, progress.error = record.offset, exc
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
                    _log_failure("output of %s-%s@%s was not acked", (tp.topic, tp.partition, offset), error)
                    p.failed_at, p.error = offset, error
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
        for tp, offset in offsets.items():
            self.backoff.succeeded(tp, offset)
        return True

    def _rewind(self, consumer: AIOKafkaConsumer, progress: dict[TopicPartition, _PartitionProgress]) -> None:
        assigned = consumer.assignment()
        for tp, p in progress.items():
            if p.failed_at is not None and p.error is not None:
                self.backoff.failed(consumer, tp, p.failed_at, p.error)
            elif self._gate is not None and p.held is not None and tp in assigned:
                self._gate.hold(consumer, p.held)

    async def _back_off(self) -> None:
        self._consecutive_failures += 1
        ceiling = min(
            self._max_retry_backoff_ms,
            self._retry_backoff_ms * 2 ** min(self._consecutive_failures - 1, 16),
        )
        await asyncio.sleep(random.uniform(ceiling / 2, ceiling) / 1000)


def _log_failure(what: str, where: Any, exc: BaseException) -> None:
    # A refusal that retrying cannot fix is reported once, by the partition backoff.
    coordinates = where if isinstance(where, tuple) else (where.topic, where.partition, where.offset)
    level = logging.DEBUG if refusal(exc) else logging.WARNING
    logger.log(level, what + "; it will be retried: %r", *coordinates, exc)


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
