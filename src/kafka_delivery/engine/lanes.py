"""One input partition's records between fetch and commit: the key chains that order their
processing, and the queues that keep their publishing and committing in offset order."""

import asyncio
import itertools
from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka import TopicPartition

from kafka_delivery.types import InputRecord, OutgoingRecord

Ordering = Literal["key", "partition"]
# The chain every record of a partition joins in `partition` mode.
_WHOLE_PARTITION = object()


@dataclass(slots=True, eq=False)
class Pending:
    """One admitted record, pending until committed: processed once its predecessors are, then
    published, then committed."""

    record: InputRecord
    lane: "PartitionLane"
    offset: int
    admitted: float  # time.monotonic() when its batch was admitted
    # Predecessors (same key, or a null-key barrier) not finished yet, and the records waiting on this one.
    waiting_for: int = 0
    dependents: list["Pending"] | None = None
    outputs: Sequence[OutgoingRecord] = ()
    error: BaseException | None = None
    done: bool = False
    dropped: bool = False
    acks: Sequence["asyncio.Future[Any]"] = ()


def ack_error(ack: "asyncio.Future[Any]") -> BaseException | None:
    """Why a settled output ack failed (a cancelled one counts as not acked), or None if it did not."""
    return asyncio.CancelledError() if ack.cancelled() else ack.exception()


@dataclass(eq=False)
class PartitionLane:
    """The records of one partition from admission to commit.

    `unpublished` holds admitted records in offset order until the head is processed and published;
    `unacked` holds published records until the guarantee commits them. Records of one key (or, in
    `partition` mode, all records) form a chain: each starts only once the one before it finished.
    A record with a null key is a barrier: it waits for every earlier record of its partition, and
    every later one waits for it.
    """

    tp: TopicPartition
    ordering: Ordering
    unpublished: deque[Pending] = field(default_factory=deque)
    unacked: deque[Pending] = field(default_factory=deque)
    # How many of the first `unacked` records are known to be acknowledged (at-least-once's commit
    # scan starts after them).
    acked: int = 0
    # The next offset to admit; after a rewind, `resync_to` is where the next fetch must start.
    next_offset: int | None = None
    resync_to: int | None = None
    # One past the last record processed, for the gap metric (the committed side is the engine's).
    processed_through: int | None = None
    closing: bool = False
    # From a failed publish or commit until the guarantee has recovered: nothing is published,
    # committed or admitted meanwhile (the recovery fetches the partition again).
    failing: bool = False
    # Held by a transaction commit: nothing is published into the transaction while it commits.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tails: dict[Hashable, Pending] = field(default_factory=dict)
    _barrier: Pending | None = None
    _since_barrier: list[Pending] = field(default_factory=list)
    _prune_at: int = 64
    _empty: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._empty.set()

    def __len__(self) -> int:
        return len(self.unpublished) + len(self.unacked)

    def pending(self) -> Iterator[Pending]:
        """Every record of the lane, published ones first, each in offset order."""
        yield from self.unacked
        yield from self.unpublished

    def oldest(self) -> Pending | None:
        return self.unacked[0] if self.unacked else (self.unpublished[0] if self.unpublished else None)

    def admit(self, record: InputRecord, now: float, *, running: bool = False) -> Pending:
        """Queue `record`, admitted at `now` (monotonic); `waiting_for` says whether it may start now.

        `running`: the caller runs the record at once if it may start (an eager engine). It then
        joins its key's chain only if it has to wait for something (`hold`): a record that is done
        before the next one is admitted holds no one up.
        """
        pending = Pending(record, self, record.offset, now)
        self.unpublished.append(pending)
        self.next_offset = record.offset + 1
        self._empty.clear()
        barrier = self._barrier
        if record.key is None:
            before = [s for s in self._since_barrier if not s.done]
            if barrier is not None and not barrier.done:
                before.append(barrier)
            self._barrier, self._since_barrier = pending, []
        else:
            chain: Hashable = record.key if self.ordering == "key" else _WHOLE_PARTITION
            tail = self._tails.get(chain)
            before = [tail] if tail is not None and not tail.done else []
            if barrier is not None and not barrier.done:
                before.append(barrier)
            if running and not before:
                return pending
            self._join(chain, pending)
        for predecessor in before:
            if predecessor.dependents is None:
                predecessor.dependents = [pending]
            else:
                predecessor.dependents.append(pending)
        pending.waiting_for = len(before)
        return pending

    def hold(self, pending: Pending) -> None:
        """`pending`, admitted `running`, waits after all: later records of its key wait for it."""
        if pending.record.key is not None:
            self._join(pending.record.key if self.ordering == "key" else _WHOLE_PARTITION, pending)

    def _join(self, chain: Hashable, pending: Pending) -> None:
        self._tails[chain] = pending
        self._since_barrier.append(pending)
        if len(self._since_barrier) >= self._prune_at:  # amortised: keep only unfinished ones
            self._since_barrier = [s for s in self._since_barrier if not s.done]
            self._prune_at = 64 + 2 * len(self._since_barrier)

    def finish(self, pending: Pending) -> list[Pending]:
        """Mark `pending` processed; returns the records it was the last predecessor of."""
        pending.done = True
        if pending.record.key is not None:
            chain: Hashable = pending.record.key if self.ordering == "key" else _WHOLE_PARTITION
            if self._tails.get(chain) is pending:
                del self._tails[chain]
        ready = []
        if pending.dependents is not None:
            for dependent in pending.dependents:
                dependent.waiting_for -= 1
                if dependent.waiting_for == 0:
                    ready.append(dependent)
            pending.dependents = None
        offset = pending.offset + 1
        if not pending.dropped and (self.processed_through is None or offset > self.processed_through):
            self.processed_through = offset
        return ready

    def publishable(self) -> Pending | None:
        """The head of the unpublished records, once it is processed."""
        if self.unpublished and self.unpublished[0].done:
            return self.unpublished[0]
        return None

    def published(self, pending: Pending, acks: Sequence["asyncio.Future[Any]"]) -> None:
        assert self.unpublished[0] is pending
        self.unpublished.popleft()
        pending.acks = acks
        self.unacked.append(pending)

    def committed_through(self, offset: int) -> list[Pending]:
        """The guarantee committed up to `offset` (exclusive): those records leave the lane."""
        gone = []
        while self.unacked and self.unacked[0].offset < offset:
            gone.append(self.unacked.popleft())
        self.acked = max(0, self.acked - len(gone))
        self._check_empty()
        return gone

    def drop_from(self, offset: int | None = None) -> list[Pending]:
        """Forget every record at or after `offset` (all of them when None): they will be fetched again.

        A dropped record still being processed stays the tail of its key chain until it finishes:
        its key's next record (fetched again) does not start before, so one key never runs twice at once.
        """
        dropped = [s for s in self.pending() if offset is None or s.offset >= offset]
        for pending in dropped:
            pending.dropped = True
        self.unacked = deque(s for s in self.unacked if not s.dropped)
        self.unpublished = deque(s for s in self.unpublished if not s.dropped)
        self.acked = min(self.acked, len(self.unacked))
        if dropped:
            self.next_offset = min(s.offset for s in dropped)
        self._check_empty()
        return dropped

    def fail(self, offset: int | None) -> None:
        """A publish or commit failed: forget the records from `offset` on (all when None), and
        publish, commit or admit nothing until `recovered`."""
        self.drop_from(offset)
        self.failing = True

    def recovered(self) -> None:
        self.failing = False

    def rewind(self, offset: int) -> None:
        """Forget the records from `offset` on: the partition is fetched again from there."""
        self.drop_from(offset)
        self.resync_at(offset)

    def resync_at(self, offset: int) -> None:
        """The next fetch must start at `offset`: records fetched before it are stale."""
        self.next_offset = self.resync_to = offset

    def take_resync(self) -> int | None:
        """Where the next fetch must start, once: the fetch after it is taken as it comes."""
        offset, self.resync_to = self.resync_to, None
        return offset

    def close(self) -> None:
        """The partition is revoked or the engine stops: its records are drained, none admitted."""
        self.closing = True

    def unchecked(self) -> Iterator[Pending]:
        """Published records not yet found acknowledged, in offset order (`found_acked` counts them)."""
        return itertools.islice(self.unacked, self.acked, None)

    def found_acked(self) -> None:
        """The first of the `unchecked` records is acknowledged: it is not looked at again."""
        self.acked += 1

    def _check_empty(self) -> None:
        if not self.unpublished and not self.unacked:
            self._empty.set()

    async def emptied(self) -> None:
        await self._empty.wait()
