"""At-least-once: outputs through one idempotent producer; each partition's offset committed only past
records whose outputs the broker acknowledged."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from kafka_delivery.engine import GroupMovedOn, GuaranteeContext, PartitionLane, Pending, ack_error
from kafka_delivery.types import OutgoingRecord, RecordSink

logger = logging.getLogger(__name__)


class AtLeastOnce:
    """A failed output rewinds its partition to that record: it and the records after it are
    processed and published again (at-least-once duplicates), in offset order."""

    drops_all_on_failure = False
    stops_at_refused_output = True
    _context: GuaranteeContext  # the engine's that runs it (attach)

    def __init__(self, sink: RecordSink) -> None:
        self._sink = sink
        # Offset commits that failed in a row: the first is a warning, the rest are counted (metric)
        # and logged at DEBUG, and the first success after them says how many there were. A group
        # coordinator out of reach fails every round (make chaos scenario 11: a round every 0.5 s).
        self._failed_commits = 0

    def attach(self, context: GuaranteeContext) -> None:
        self._context = context

    async def accepts(self, lane: PartitionLane) -> bool:
        return True

    def publish(
        self, lane: PartitionLane, outputs: Sequence[OutgoingRecord]
    ) -> "Sequence[asyncio.Future[Any]]":
        send = self._sink.send
        return [send(out) for out in outputs]

    async def commit(self, lanes: Sequence[PartitionLane], *, force: bool) -> None:
        """Commit every lane up to its acknowledged prefix, in one request."""
        context = self._context
        offsets: dict[TopicPartition, int] = {}
        for lane in lanes:
            through, failed = _acked_prefix(lane)
            if through is not None:
                offsets[lane.tp] = through
            if failed is not None:
                pending, error = failed
                context.metrics.publish_failures.inc()
                await context.fail(lane, pending.offset, error, "output of %s@%s was not acknowledged")
        consumer = context.consumer()
        if not offsets:
            return
        if consumer is not None:
            assigned = consumer.assignment()
            offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
            try:
                await consumer.commit(offsets)
            except Exception as exc:  # the acked records are committed by a later round
                context.metrics.commit_failures.inc()
                if force and isinstance(exc, CommitFailedError):  # a drain: someone else's by now
                    raise GroupMovedOn(repr(exc.__cause__ or exc)) from exc
                self._commit_failed(exc)
                await asyncio.sleep(context.backoff_ms / 1000)
                return
            if self._failed_commits:
                logger.info("offset commits succeed again after %d failed rounds", self._failed_commits)
                self._failed_commits = 0
        for tp, offset in offsets.items():
            if (owner := context.current(tp)) is not None:
                context.commit_done(owner, offset)

    def _commit_failed(self, exc: Exception) -> None:
        self._failed_commits += 1
        if self._failed_commits == 1:
            logger.warning("offset commit failed; retrying with the next rounds: %r", exc)
        else:
            logger.debug("offset commit failed again (%d in a row): %r", self._failed_commits, exc)

    async def recover(self, lane: PartitionLane, offset: int, exc: BaseException) -> int | None:
        """From `offset`, or from an earlier record whose output was refused meanwhile (another
        output partition failed while the lane recovered): nothing after a refused output may be
        published before it is published again."""
        for pending in lane.unchecked():
            if pending.offset >= offset:
                break
            if any(ack.done() and ack_error(ack) is not None for ack in pending.acks):
                return pending.offset
        return offset

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """The consumer starts each partition at its committed offset: nothing to do."""

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Nothing is held per partition outside the engine."""

    def transactional_ids(self) -> list[str]:
        return []

    async def close(self) -> None:
        """The producer is the service's, closed by it."""


def _acked_prefix(lane: PartitionLane) -> tuple[int | None, tuple[Pending, BaseException] | None]:
    """One past the last record of the lane's acknowledged prefix, and the first failed record.

    Records found acknowledged are not looked at again (`lane.acked`); records share their batch's ack.
    """
    through = lane.unacked[lane.acked - 1].offset + 1 if lane.acked else None
    acked: set[asyncio.Future[Any]] = set()
    for pending in lane.unchecked():
        for ack in pending.acks:
            if ack in acked:
                continue
            if not ack.done():
                return through, None
            if (error := ack_error(ack)) is not None:
                return through, (pending, error)
            acked.add(ack)
        through = pending.offset + 1
        lane.found_acked()
    return through, None
