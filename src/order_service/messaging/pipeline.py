"""At-least-once batch processing: commit each partition only past outputs the broker has acked."""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from order_service.messaging.backoff import refusal
from order_service.messaging.context import current_record
from order_service.messaging.pipeline_base import PipelineBase, PipelineParts
from order_service.messaging.rebalance import DrainBeforeRevoke
from order_service.messaging.records import (
    InputRecord,
    RecordSink,
    group_by_partition,
)

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _PartitionProgress:
    sent: list[tuple[int, list[Awaitable[Any]]]] = field(default_factory=list)
    failed_at: int | None = None
    error: BaseException | None = None
    commit_offset: int | None = None
    held: InputRecord | None = None


class BatchPipeline(PipelineBase):
    """Runs each record of a batch through the handler, awaits the acks, then commits per partition.

    A record whose output is not acked is neither committed nor skipped: its partition is
    rewound to it, paused for a backoff, and the record processed again; other partitions go on.
    A record that cannot be handed to the producer stops its partition's batch there; after a failed
    ack, the later records already sent are sent again with it, so outputs keep input order (the
    repeats are at-least-once duplicates).
    """

    def __init__(self, parts: PipelineParts, sink: RecordSink) -> None:
        super().__init__(parts)
        self._sink = sink
        self._consecutive_failures = 0

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
            self._max_backoff_ms,
            self._backoff_ms * 2 ** min(self._consecutive_failures - 1, 16),
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
