"""Exactly-once partition ownership: fencing on assignment, commit on revocation, rewinds, re-opens.

Split from transactional.py, whose pipeline it is the base of: this half decides when a partition
may be processed, that half processes and commits it.
"""

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from order_service.messaging.pipeline_base import PipelineBase
from order_service.messaging.rebalance import Callbacks
from order_service.messaging.records import InputRecord
from order_service.messaging.transactional_producers import PartitionProducers

logger = logging.getLogger("order_service.messaging.transactional")


class PartitionOwnership(PipelineBase):
    """Partition state shared with the pipeline: producers, next offsets, commits, backoff."""

    _producers: PartitionProducers
    _open: dict[TopicPartition, Any]
    _fenced: set[TopicPartition]
    _stale: set[TopicPartition]
    _processing: bool
    _next: dict[TopicPartition, int]

    async def _commit(self, tp: TopicPartition, consumer: Any) -> None:
        raise NotImplementedError

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        return Callbacks(on_assigned=self.assigned, on_revoked=self.revoked)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        async with self.in_flight:
            self._fenced -= partitions
            failed = await self._producers.open(partitions)
            for tp, exc in failed.items():
                # Opened again, and only then rewound, when its records arrive (_reopen).
                logger.warning("could not open the producer of %s-%s: %r", tp.topic, tp.partition, exc)
            # Offsets are read only after our producers fenced the previous owner's transactions.
            for tp in partitions - failed.keys():
                await self._rewind(tp, self.consumer())

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        async with self.in_flight:
            mine = [tp for tp in partitions if tp in self._open]
            await asyncio.gather(*(self._commit(tp, self.consumer()) for tp in mine))
            await self._producers.close(partitions)
            self.backoff.forget(partitions)
            for tp in partitions:
                self._next.pop(tp, None)

    async def _reopen(self, tp: TopicPartition, consumer: Any) -> bool:
        """A partition we own lost its producer (a failed re-creation, or an open during an outage)."""
        if consumer is None or tp in self._fenced or tp not in consumer.assignment():
            return False
        if failed := await self._producers.open([tp]):
            logger.warning("could not open the producer of %s-%s: %r", tp.topic, tp.partition, failed[tp])
            self.backoff.failed(consumer, tp, self._next.get(tp, 0), failed[tp])
            return False
        await self._rewind(tp, consumer)
        return False  # what was fetched before the rewind is stale

    async def _rewind(
        self, tp: TopicPartition, consumer: AIOKafkaConsumer | None, cause: BaseException | None = None
    ) -> None:
        if consumer is None or tp not in consumer.assignment():
            return
        try:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
                committed = 0
            else:
                consumer.seek(tp, committed)
        except Exception as exc:  # noqa: BLE001 - the partition must not go on from where it was
            # Going on would commit past the aborted records. Without its producer the partition's
            # next records re-open it (fencing again) and rewind before anything is processed.
            logger.warning("could not rewind %s-%s: %r", tp.topic, tp.partition, exc)
            await self._producers.close([tp])
            return
        self._next[tp] = self.committed[tp] = committed
        if cause is not None and not self._processing:
            # A failure between batches moved the partition back: see _drop_stale.
            self._stale.add(tp)
        if cause is not None:
            self.backoff.failed(consumer, tp, committed, cause)

    def _drop_stale(
        self, batch: dict[TopicPartition, list[InputRecord]], consumer: Any
    ) -> dict[TopicPartition, list[InputRecord]]:
        """A rewind between two batches (a periodic commit that failed, a rebalance) came after
        this batch was fetched: its records of that partition may start past the rewind, and
        processing them would commit past the records in between. Fetch them again instead."""
        stale, self._stale = self._stale, set()
        for tp in stale & batch.keys():
            del batch[tp]
            if consumer is not None and tp in consumer.assignment() and tp in self._next:
                consumer.seek(tp, self._next[tp])
        return batch
