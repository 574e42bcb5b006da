"""PartitionLane: the key chains that order one partition's processing, and its publish and commit queues."""

import asyncio

from kafka_delivery.engine.lanes import Ordering, PartitionLane, Pending
from tests.support.engine import TP0
from tests.support.fakes import record


def lane(ordering: Ordering = "key") -> PartitionLane:
    return PartitionLane(TP0, ordering)


def admit(into: PartitionLane, *keys: bytes | None) -> list[Pending]:
    """Admit one record per key, at the offsets following the lane's last one."""
    start = into.next_offset or 0
    return [into.admit(record(TP0.topic, TP0.partition, start + i, key=k), 0.0) for i, k in enumerate(keys)]


def waits(slots: list[Pending]) -> list[int]:
    return [s.waiting_for for s in slots]


def test_a_record_waits_for_the_previous_record_of_its_key_only() -> None:
    chains = lane()
    a0, b1, a2, c3 = admit(chains, b"a", b"b", b"a", b"c")

    assert waits([a0, b1, a2, c3]) == [0, 0, 1, 0]
    assert chains.finish(b1) == []
    assert chains.finish(a0) == [a2]
    assert a2.waiting_for == 0


def test_a_key_whose_last_record_finished_starts_at_once() -> None:
    chains = lane()
    (a0,) = admit(chains, b"a")
    chains.finish(a0)

    (a1,) = admit(chains, b"a")

    assert a1.waiting_for == 0


def test_partition_ordering_chains_every_record_of_the_partition() -> None:
    chain = lane("partition")
    a0, b1, c2 = admit(chain, b"a", b"b", b"c")

    assert waits([a0, b1, c2]) == [0, 1, 1]
    assert chain.finish(a0) == [b1]
    assert chain.finish(b1) == [c2]


def test_a_null_key_record_waits_for_every_earlier_record_and_every_later_one_waits_for_it() -> None:
    chains = lane()
    a0, b1, c2 = admit(chains, b"a", b"b", b"c")
    chains.finish(c2)  # finished before the barrier arrives: not waited for

    barrier, a4, d5 = admit(chains, None, b"a", b"d")

    assert barrier.waiting_for == 2
    assert a4.waiting_for == 2  # its key's predecessor, and the barrier
    assert d5.waiting_for == 1  # a new key waits for the barrier alone
    assert chains.finish(a0) == []
    assert chains.finish(b1) == [barrier]
    assert chains.finish(barrier) == [a4, d5]


def test_null_key_records_in_a_row_run_one_after_the_other() -> None:
    chains = lane()
    first, second = admit(chains, None, None)

    assert waits([first, second]) == [0, 1]
    assert chains.finish(first) == [second]


def test_a_dropped_record_still_running_stays_the_tail_of_its_key_until_it_finishes() -> None:
    chains = lane()
    a0, b1 = admit(chains, b"a", b"b")  # a0 is being processed, b1 too

    dropped = chains.drop_from(0)

    assert dropped == [a0, b1]
    assert [s.dropped for s in dropped] == [True, True]
    assert len(chains) == 0
    assert chains.next_offset == 0
    # Fetched again: each waits for its dropped predecessor, so one key never runs twice at once.
    a0_again, b1_again = admit(chains, b"a", b"b")
    assert waits([a0_again, b1_again]) == [1, 1]
    assert chains.finish(a0) == [a0_again]
    assert chains.processed_through is None  # a dropped record does not count as processed
    assert chains.finish(b1) == [b1_again]


def test_dropping_from_an_offset_keeps_the_records_before_it() -> None:
    chains = lane()
    slots = admit(chains, b"a", b"b", b"c")

    assert chains.drop_from(1) == slots[1:]

    assert list(chains.pending()) == slots[:1]
    assert chains.next_offset == 1


async def test_records_are_published_and_committed_in_offset_order() -> None:
    queue = lane()
    s0, s1, s2 = admit(queue, b"a", b"b", b"c")

    queue.finish(s1)
    assert queue.publishable() is None  # the head is not processed yet
    queue.finish(s0)
    assert queue.publishable() is s0
    queue.published(s0, ())
    assert queue.publishable() is s1
    queue.published(s1, ())
    assert queue.publishable() is None  # s2 is not processed yet
    assert queue.processed_through == 2

    assert queue.committed_through(1) == [s0]
    assert list(queue.pending()) == [s1, s2]
    assert queue.oldest() is s1

    queue.finish(s2)
    queue.published(s2, ())
    assert queue.committed_through(3) == [s1, s2]
    assert len(queue) == 0
    await asyncio.wait_for(queue.emptied(), timeout=1)


def test_records_finished_since_the_last_barrier_are_not_kept() -> None:
    chains = lane()
    (stuck,) = admit(chains, b"stuck")
    for i in range(10_000):
        (slot,) = admit(chains, b"k%d" % (i % 100))
        chains.finish(slot)

    assert len(chains._since_barrier) < 200
    assert list(chains._tails) == [b"stuck"]
    # Pruned, and still right: a barrier waits for the one record left unfinished.
    (barrier,) = admit(chains, None)
    assert barrier.waiting_for == 1
    assert chains.finish(stuck) == [barrier]


def test_a_record_admitted_running_joins_its_key_only_if_it_waits() -> None:
    chains = lane()
    a0 = chains.admit(record(TP0.topic, TP0.partition, 0, key=b"a"), 0.0, running=True)
    chains.finish(a0)  # done at once: nobody had to wait for it
    a1 = chains.admit(record(TP0.topic, TP0.partition, 1, key=b"a"), 0.0, running=True)
    assert (a0.waiting_for, a1.waiting_for) == (0, 0)

    chains.hold(a1)  # it waits (a retry's sleep): the next record of its key waits for it
    a2 = chains.admit(record(TP0.topic, TP0.partition, 2, key=b"a"), 0.0, running=True)
    b3 = chains.admit(record(TP0.topic, TP0.partition, 3, key=b"b"), 0.0, running=True)
    assert (a2.waiting_for, b3.waiting_for) == (1, 0)
    assert chains.finish(a1) == [a2]
