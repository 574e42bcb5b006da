"""Exactly-once: one transaction open per input partition, committed with the partition's offset
every interval, through a producer per partition (EOS v1 fencing, exactly_once_producers.py).

A partition's transaction holds exactly its published, uncommitted records: they are published in
offset order, so committing the transaction with the offset after the last of them commits a
contiguous prefix. On any failure the transaction is aborted and the partition fetched again from
its committed offset; on a commit timeout the producer is re-created instead (KAFKA-17754).
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

from kafka_delivery.engine import GuaranteeContext, PartitionLane
from kafka_delivery.guarantees.transactional_producers import PartitionProducers
from kafka_delivery.types import OutgoingRecord

logger = logging.getLogger(__name__)
FENCED = (ProducerFenced, InvalidProducerEpoch)


class CommitTimedOut(TimeoutError):
    """The transaction's outcome is unknown: its producer is re-created, which settles it."""


class ExactlyOnce:
    drops_all_on_failure = True
    stops_at_refused_output = False
    _context: GuaranteeContext  # the engine's that runs it (attach)

    def __init__(
        self,
        producers: PartitionProducers,
        *,
        group_id: str,
        commit_interval_ms: int = 100,
        commit_timeout_ms: int = 30_000,
    ) -> None:
        self._producers = producers
        self._group_id = group_id
        self._interval_s = commit_interval_ms / 1000
        self._timeout_s = commit_timeout_ms / 1000
        # When each partition's open transaction began.
        self._open: dict[TopicPartition, float] = {}
        # Partitions whose producer was fenced: another instance's until the next assignment.
        self._fenced: set[TopicPartition] = set()
        # Partitions the group assigned to this instance: the only ones a producer is opened for.
        self._owned: set[TopicPartition] = set()
        # Partitions whose assignment is opening their producers: they take nothing meanwhile.
        self._opening: set[TopicPartition] = set()
        # Partitions fetched again from their committed offset since their producer opened: only
        # these take records. Offsets read before the fencing may predate the last owner's commit.
        self._rewound: set[TopicPartition] = set()

    def attach(self, context: GuaranteeContext) -> None:
        self._context = context
        # Both outcomes' series from the start: Prometheus sees the first abort as an increase.
        for result in ("committed", "aborted"):
            context.metrics.transactions.labels(result)

    def transactional_ids(self) -> list[str]:
        return self._producers.transactional_ids()

    # --- ownership ----------------------------------------------------------------------------

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        self._fenced -= partitions
        self._rewound -= partitions
        self._owned |= partitions
        self._opening |= partitions
        try:
            failed = await self._producers.open(partitions)
            for tp, exc in failed.items():
                # Opened again, and only then rewound, when its records arrive (accepts).
                logger.warning("could not open the producer of %s-%s: %r", tp.topic, tp.partition, exc)
            # Offsets are read only once our producers fenced the previous owner's transactions.
            for tp in partitions - failed.keys():
                await self._rewind(self._context.lane(tp))
        finally:
            self._opening -= partitions

    async def accepts(self, lane: PartitionLane) -> bool:
        """A partition we own may have lost its producer (a failed re-creation, an open during an
        outage): open it again, and fetch from the committed offset before taking records."""
        tp = lane.tp
        if tp in self._producers and tp in self._rewound:
            return True
        if tp in self._opening:
            return False
        consumer = self._context.consumer()
        if consumer is None or tp in self._fenced or tp not in self._owned or tp not in consumer.assignment():
            return False
        if tp not in self._producers and (failed := await self._producers.open([tp])):
            logger.warning("could not open the producer of %s-%s: %r", tp.topic, tp.partition, failed[tp])
            self._context.back_off(tp, lane.next_offset or 0, failed[tp])
            return False
        await self._rewind(lane)
        return False  # what was fetched before the rewind is stale

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """The engine committed what it could; whatever transaction is left open is aborted."""
        for tp in partitions:
            self._open.pop(tp, None)
        self._rewound -= partitions
        self._owned -= partitions
        await self._producers.close(partitions)

    async def close(self) -> None:
        self._open.clear()
        await self._producers.close_all()

    # --- publishing and committing ------------------------------------------------------------

    def publish(
        self, lane: PartitionLane, outputs: Sequence[OutgoingRecord]
    ) -> "Sequence[asyncio.Future[Any]]":
        """Into the partition's open transaction: its producer is in one whenever no commit runs."""
        append = self._producers.batches(lane.tp).append
        if lane.tp not in self._open:
            self._open[lane.tp] = time.monotonic()
        return [append(out) for out in outputs]

    async def commit(self, lanes: Sequence[PartitionLane], *, force: bool) -> None:
        now = time.monotonic()
        due = [
            lane
            for lane in lanes
            if (began := self._open.get(lane.tp)) is not None
            and (force or lane.closing or now - began >= self._interval_s)
        ]
        await asyncio.gather(*(self._commit(lane) for lane in due))

    async def _commit(self, lane: PartitionLane) -> None:
        tp = lane.tp
        async with lane.lock:  # nothing is published into the transaction while it commits
            if tp not in self._open or not lane.unacked:
                return
            through = lane.unacked[-1].offset + 1
            acks = {ack for pending in lane.unacked for ack in pending.acks}  # records share their batch's
            try:
                producer, batches = self._producers[tp], self._producers.batches(tp)
                try:
                    async with asyncio.timeout(self._timeout_s):
                        await batches.flush()  # every output appended is in the producer's hands
                        await asyncio.gather(*acks)
                        await producer.send_offsets_to_transaction({tp: through}, self._group_id)
                        await producer.commit_transaction()
                except TimeoutError as exc:
                    raise CommitTimedOut("transaction commit timed out") from exc
            except Exception as exc:  # noqa: BLE001 - any failure aborts the partition's transaction
                self._context.metrics.commit_failures.inc()
                # Still open here: recover() pops it and counts the transaction aborted (unless the
                # lane was revoked meanwhile: then fail() leaves the partition to its new owner).
                await self._context.fail(lane, through - 1, exc, "transaction of %s up to %s failed")
                return
            owned = self._context.owns(lane)  # else revoked meanwhile: `_open` is not its any more
            if owned:
                self._open.pop(tp, None)
            self._context.metrics.transactions.labels("committed").inc()
            self._context.commit_done(lane, through)
            if not owned:
                return  # its producer is closed, or is the new owner's
            try:
                await producer.begin_transaction()  # the next records' transaction
            except Exception as exc:  # noqa: BLE001 - a producer that cannot go on is re-created
                await self._context.fail(lane, through, exc, "the transaction of %s after %s could not begin")
                return
        self._context.publish_now(lane)  # what finished while the transaction committed

    # --- failures -----------------------------------------------------------------------------

    async def recover(self, lane: PartitionLane, offset: int, exc: BaseException) -> int | None:
        tp = lane.tp
        # No record is taken until the partition is fetched again from its committed offset.
        self._rewound.discard(tp)
        began = self._open.pop(tp, None)
        if began is not None or isinstance(exc, (CommitTimedOut, *FENCED)):
            self._context.metrics.transactions.labels("aborted").inc()
        if isinstance(exc, FENCED):
            logger.warning("producer for %s was fenced: another instance owns the partition now", tp)
            self._fenced.add(tp)
            self._rewound.discard(tp)
            await self._producers.close([tp])
            return None
        if isinstance(exc, CommitTimedOut):
            # KAFKA-17754: an abort after a timed-out commit can race the commit itself. A new
            # producer with the same transactional.id makes the coordinator finish it, either way.
            logger.error("transaction commit for %s timed out; re-creating its producer", tp)
        # Not abort_transaction(): after a failed send aiokafka's producer can stay stuck on
        # OutOfOrderSequenceNumber (no KIP-360 epoch bump). A new producer with the same
        # transactional.id aborts the open transaction at the coordinator and starts clean.
        try:
            await self._producers.recreate(tp)
        except Exception as reopen_error:  # noqa: BLE001 - the partition re-opens with its next records
            logger.warning(
                "could not re-create the producer of %s-%s: %r", tp.topic, tp.partition, reopen_error
            )
            return None
        target = await self._committed(lane)
        if target is not None:
            self._rewound.add(tp)  # the engine rewinds it before anything else runs
        return target

    async def _rewind(self, lane: PartitionLane) -> None:
        target = await self._committed(lane)
        if target is not None:
            self._context.rewind(lane, target)
            self._rewound.add(lane.tp)

    async def _committed(self, lane: PartitionLane) -> int | None:
        """The partition's committed offset (its beginning when none), or None when unknown."""
        tp = lane.tp
        consumer = self._context.consumer()
        if consumer is None or tp not in consumer.assignment():
            return None
        try:
            committed = await consumer.committed(tp)
            if committed is None:
                committed = (await consumer.beginning_offsets([tp]))[tp]
        except Exception as exc:  # noqa: BLE001 - the partition must not go on from where it was
            # Going on would commit past the aborted records. Without its producer the partition's
            # next records re-open it (fencing again) and rewind before anything is processed.
            logger.warning("could not read the committed offset of %s-%s: %r", tp.topic, tp.partition, exc)
            await self._producers.close([tp])
            self._rewound.discard(tp)
            lane.drop_from(None)
            return None
        self._context.note_committed(tp, committed)
        return int(committed)
