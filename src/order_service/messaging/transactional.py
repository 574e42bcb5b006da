"""Exactly-once batch processing: outputs and input offsets committed in one transaction per partition."""

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

from order_service.messaging.backoff import refusal
from order_service.messaging.context import current_record
from order_service.messaging.pipeline_base import PipelineParts
from order_service.messaging.records import InputRecord, group_by_partition
from order_service.messaging.transactional_ownership import PartitionOwnership
from order_service.messaging.transactional_producers import PartitionProducers

logger = logging.getLogger(__name__)
FENCED = (ProducerFenced, InvalidProducerEpoch)


@dataclass(slots=True)
class _OpenTransaction:
    started: float
    next_offset: int = -1
    acks: list[Any] = field(default_factory=list)


class TransactionalPipeline(PartitionOwnership):
    """Keeps one transaction open per partition and commits it, with its offsets, every interval.

    On any failure the transaction is aborted and the partition rewound to its committed offset;
    on a commit timeout the producer is re-created instead (see docs/delivery-guarantees.md).
    """

    def __init__(
        self,
        parts: PipelineParts,
        producers: PartitionProducers,
        *,
        group_id: str,
        commit_interval_ms: int = 100,
        commit_timeout_ms: int = 30_000,
    ) -> None:
        super().__init__(parts)
        self._producers = producers
        self._group_id = group_id
        self._interval_s = commit_interval_ms / 1000
        self._timeout_s = commit_timeout_ms / 1000
        self._open: dict[TopicPartition, _OpenTransaction] = {}
        # Partitions whose producer was fenced: they are someone else's until the next assignment.
        self._fenced: set[TopicPartition] = set()
        # Partitions rewound between batches, and whether a batch is being processed now.
        self._stale: set[TopicPartition] = set()
        self._processing = False
        self._next: dict[TopicPartition, int] = {}
        self._ticker: asyncio.Task[None] | None = None

    def transactional_ids(self) -> list[str]:
        return self._producers.transactional_ids()

    async def process(self, records: Sequence[InputRecord]) -> None:
        consumer = self.consumer()
        started = time.monotonic()
        async with self.in_flight:
            if self._ticker is None:
                self._ticker = asyncio.create_task(self._commit_periodically())
            batch = self._drop_stale(group_by_partition(records), consumer)
            self._processing = True
            try:
                await asyncio.gather(*(self._add(tp, recs, consumer) for tp, recs in batch.items()))
                await self._commit_due(consumer)
            finally:
                self._processing = False
        self._metrics.batch_done(records, started)

    async def _add(self, tp: TopicPartition, records: list[InputRecord], consumer: Any) -> None:
        if tp not in self._producers and not await self._reopen(tp, consumer):
            return
        # Records fetched before a rewind or an assignment are stale: their offsets are behind.
        fresh = [r for r in records if r.offset >= self._next.get(tp, 0)]
        if self._gate is not None:
            fresh, held = self._gate.split(fresh)
            if held is not None and consumer is not None:
                self._gate.hold(consumer, held)
                self._next[tp] = held.offset
        if not fresh:
            return
        producer = self._producers[tp]
        txn = self._open.get(tp)
        try:
            if txn is None:
                await producer.begin_transaction()
                txn = self._open[tp] = _OpenTransaction(started=time.monotonic())
            for record in fresh:
                current_record.set(record)
                for out in await self._handle(record):
                    txn.acks.append(
                        await producer.send(out.topic, value=out.value, key=out.key, headers=out.headers)
                    )
                txn.next_offset = self._next[tp] = record.offset + 1
        except Exception as exc:  # noqa: BLE001 - any failure aborts the partition's transaction
            await self._abort(tp, consumer, exc)

    async def _commit_due(self, consumer: Any, *, force: bool = False) -> None:
        now = time.monotonic()
        due = [tp for tp, txn in self._open.items() if force or now - txn.started >= self._interval_s]
        await asyncio.gather(*(self._commit(tp, consumer) for tp in due))

    async def _commit(self, tp: TopicPartition, consumer: Any) -> None:
        txn = self._open[tp]
        producer = self._producers[tp]
        try:
            async with asyncio.timeout(self._timeout_s):
                await asyncio.gather(*txn.acks)
                await producer.send_offsets_to_transaction({tp: txn.next_offset}, self._group_id)
                await producer.commit_transaction()
        except TimeoutError:
            # KAFKA-17754: an abort after a timed-out commit can race the commit itself. A new
            # producer with the same transactional.id makes the coordinator finish it, either way.
            logger.error("transaction commit for %s timed out; re-creating its producer", tp)
            self._metrics.commit_failures.inc()
            self._open.pop(tp)
            try:
                await self._producers.recreate(tp)
            except Exception as reopen_error:  # noqa: BLE001 - the partition re-opens with its next records
                logger.warning(
                    "could not re-create the producer of %s-%s: %r", tp.topic, tp.partition, reopen_error
                )
            await self._rewind(tp, consumer, TimeoutError("transaction commit timed out"))
        except Exception as exc:  # noqa: BLE001 - any failure aborts the partition's transaction
            await self._abort(tp, consumer, exc)
        else:
            self._open.pop(tp)
            self.committed[tp] = txn.next_offset
            self.backoff.succeeded(tp, txn.next_offset)
            self._metrics.transactions.labels("committed").inc()

    async def _abort(self, tp: TopicPartition, consumer: Any, exc: BaseException) -> None:
        self._open.pop(tp, None)
        self._metrics.transactions.labels("aborted").inc()
        if isinstance(exc, FENCED):
            logger.warning("producer for %s was fenced: another instance owns the partition now", tp)
            self._fenced.add(tp)
            await self._producers.close([tp])
            return
        # A refusal that retrying cannot fix is reported once, by the partition backoff.
        level = logging.DEBUG if refusal(exc) else logging.WARNING
        logger.log(level, "transaction for %s-%s failed, rewinding: %r", tp.topic, tp.partition, exc)
        # Not abort_transaction(): after a failed send aiokafka's producer can stay stuck on
        # OutOfOrderSequenceNumber (no KIP-360 epoch bump). A new producer with the same
        # transactional.id aborts the open transaction at the coordinator and starts clean.
        try:
            await self._producers.recreate(tp)
        except Exception as reopen_error:  # noqa: BLE001 - retried after the partition's backoff
            logger.warning(
                "could not re-create the producer of %s-%s: %r", tp.topic, tp.partition, reopen_error
            )
        await self._rewind(tp, consumer, exc)

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        async with self.in_flight:
            await self._commit_due(None, force=True)
            await self._producers.close_all()

    async def _commit_periodically(self) -> None:
        # Commits transactions that a quiet partition left open; busy ones commit in process().
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                async with self.in_flight:
                    await self._commit_due(self.consumer())
            except Exception:
                logger.exception("periodic transaction commit failed; retrying at the next interval")
