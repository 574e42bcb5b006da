"""One input partition's records between fetch and commit: the key chains that order their
processing, and the queues that keep their publishing and committing in offset order."""

import asyncio
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
class Slot:
    """One admitted record: processed once its predecessors are, then published, then committed."""

    record: InputRecord
    lane: "Lane"
    offset: int
    admitted: float  # time.monotonic() when its batch was admitted
    # Predecessors (same key, or a null-key barrier) not finished yet, and the slots waiting on this one.
    waiting_for: int = 0
    dependents: list["Slot"] | None = None
    outputs: Sequence[OutgoingRecord] = ()
    error: BaseException | None = None
    done: bool = False
    dropped: bool = False
    acks: Sequence["asyncio.Future[Any]"] = ()


def ack_error(ack: "asyncio.Future[Any]") -> BaseException | None:
    """Why a settled output ack failed (a cancelled one counts as not acked), or None if it did not."""
    return asyncio.CancelledError() if ack.cancelled() else ack.exception()


@dataclass(eq=False)
class Lane:
    """The records of one partition from admission to commit.

    `unpublished` holds admitted records in offset order until the head is processed and published;
    `unacked` holds published records until the guarantee commits them. Records of one key (or, in
    `partition` mode, all records) form a chain: each starts only once the one before it finished.
    A record with a null key is a barrier: it waits for every earlier record of its partition, and
    every later one waits for it.
    """

    tp: TopicPartition
    ordering: Ordering
    unpublished: deque[Slot] = field(default_factory=deque)
    unacked: deque[Slot] = field(default_factory=deque)
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
    _tails: dict[Hashable, Slot] = field(default_factory=dict)
    _barrier: Slot | None = None
    _since_barrier: list[Slot] = field(default_factory=list)
    _prune_at: int = 64
    _empty: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._empty.set()

    def __len__(self) -> int:
        return len(self.unpublished) + len(self.unacked)

    def slots(self) -> Iterator[Slot]:
        yield from self.unacked
        yield from self.unpublished

    def oldest(self) -> Slot | None:
        return self.unacked[0] if self.unacked else (self.unpublished[0] if self.unpublished else None)

    def admit(self, record: InputRecord, now: float, *, running: bool = False) -> Slot:
        """Queue `record`, admitted at `now` (monotonic); `waiting_for` says whether it may start now.

        `running`: the caller runs the record at once if it may start (an eager engine). It then
        joins its key's chain only if it has to wait for something (`hold`): a record that is done
        before the next one is admitted holds no one up.
        """
        slot = Slot(record, self, record.offset, now)
        self.unpublished.append(slot)
        self.next_offset = record.offset + 1
        self._empty.clear()
        barrier = self._barrier
        if record.key is None:
            before = [s for s in self._since_barrier if not s.done]
            if barrier is not None and not barrier.done:
                before.append(barrier)
            self._barrier, self._since_barrier = slot, []
        else:
            chain: Hashable = record.key if self.ordering == "key" else _WHOLE_PARTITION
            tail = self._tails.get(chain)
            before = [tail] if tail is not None and not tail.done else []
            if barrier is not None and not barrier.done:
                before.append(barrier)
            if running and not before:
                return slot
            self._join(chain, slot)
        for predecessor in before:
            if predecessor.dependents is None:
                predecessor.dependents = [slot]
            else:
                predecessor.dependents.append(slot)
        slot.waiting_for = len(before)
        return slot

    def hold(self, slot: Slot) -> None:
        """`slot`, admitted `running`, waits after all: later records of its key wait for it."""
        if slot.record.key is not None:
            self._join(slot.record.key if self.ordering == "key" else _WHOLE_PARTITION, slot)

    def _join(self, chain: Hashable, slot: Slot) -> None:
        self._tails[chain] = slot
        self._since_barrier.append(slot)
        if len(self._since_barrier) >= self._prune_at:  # amortised: keep only unfinished ones
            self._since_barrier = [s for s in self._since_barrier if not s.done]
            self._prune_at = 64 + 2 * len(self._since_barrier)

    def finish(self, slot: Slot) -> list[Slot]:
        """Mark `slot` processed; returns the slots it was the last predecessor of."""
        slot.done = True
        if slot.record.key is not None:
            chain: Hashable = slot.record.key if self.ordering == "key" else _WHOLE_PARTITION
            if self._tails.get(chain) is slot:
                del self._tails[chain]
        ready = []
        if slot.dependents is not None:
            for dependent in slot.dependents:
                dependent.waiting_for -= 1
                if dependent.waiting_for == 0:
                    ready.append(dependent)
            slot.dependents = None
        offset = slot.offset + 1
        if not slot.dropped and (self.processed_through is None or offset > self.processed_through):
            self.processed_through = offset
        return ready

    def publishable(self) -> Slot | None:
        """The head of the unpublished records, once it is processed."""
        if self.unpublished and self.unpublished[0].done:
            return self.unpublished[0]
        return None

    def published(self, slot: Slot, acks: Sequence["asyncio.Future[Any]"]) -> None:
        assert self.unpublished[0] is slot
        self.unpublished.popleft()
        slot.acks = acks
        self.unacked.append(slot)

    def committed_through(self, offset: int) -> list[Slot]:
        """The guarantee committed up to `offset` (exclusive): those slots leave the lane."""
        gone = []
        while self.unacked and self.unacked[0].offset < offset:
            gone.append(self.unacked.popleft())
        self.acked = max(0, self.acked - len(gone))
        self._check_empty()
        return gone

    def drop_from(self, offset: int | None = None) -> list[Slot]:
        """Forget every record at or after `offset` (all of them when None): they will be fetched again.

        A dropped record still being processed stays the tail of its key chain until it finishes:
        its key's next record (fetched again) does not start before, so one key never runs twice at once.
        """
        dropped = [s for s in self.slots() if offset is None or s.offset >= offset]
        for slot in dropped:
            slot.dropped = True
        self.unacked = deque(s for s in self.unacked if not s.dropped)
        self.unpublished = deque(s for s in self.unpublished if not s.dropped)
        self.acked = min(self.acked, len(self.unacked))
        if dropped:
            self.next_offset = min(s.offset for s in dropped)
        self._check_empty()
        return dropped

    def _check_empty(self) -> None:
        if not self.unpublished and not self.unacked:
            self._empty.set()

    async def emptied(self) -> None:
        await self._empty.wait()
