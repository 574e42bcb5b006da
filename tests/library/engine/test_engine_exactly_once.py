"""The delivery engine with the exactly-once guarantee, over in-memory fakes: a transaction per input
partition, through a producer per partition that fences the previous owner; aborts and rewinds.

FakeKafka plays the broker side: records become visible, and offsets committed, only when a
transaction commits; a producer initialised with a transactional.id fences the previous one.
Transactions commit when a test runs a commit round (the interval is long unless a test shortens it).
"""

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaTimeoutError,
    ProducerClosed,
    ProducerFenced,
)

from kafka_delivery.guarantees.transactional_producers import PartitionProducers
from kafka_delivery.types import OutgoingRecord
from tests.support.engine import APP, GROUP, TP0, TP1, Engines, ExactlyOnceRig, Work, echo, txn, value
from tests.support.fakes import FakeKafka, FakeProducer, records, value_is, wait_until


def values(tp: TopicPartition, offsets: range) -> list[bytes]:
    return [value(tp, o) for o in offsets]


async def sent(rig: ExactlyOnceRig, tp: TopicPartition, offsets: range) -> None:
    """Wait until the partition's producer sent the outputs of these records (into its transaction)."""
    await wait_until(lambda: set(values(tp, offsets)) <= set(rig.sent(tp)), what=f"{tp} sent {offsets}")


async def rewound(rig: ExactlyOnceRig, tp: TopicPartition, offset: int) -> None:
    await wait_until(lambda: rig.consumer.seeks[-1:] == [(tp, offset)], what=f"{tp} rewound to {offset}")


def aborted(rig: ExactlyOnceRig) -> float | None:
    return rig.metric("transactions_total", result="aborted")


# --- assignment ---------------------------------------------------------------------------------


async def test_assignment_opens_a_producer_per_partition_fences_the_previous_owner_and_rewinds(
    engines: Engines,
) -> None:
    kafka = FakeKafka()
    kafka.group(GROUP)[TP1] = 5
    previous = PartitionProducers(kafka.build, app_id=APP)
    assert await previous.open([TP0]) == {}  # in a transaction, ready to publish into
    await previous[TP0].send("out", value=b"zombie")

    rig = await engines.exactly_once(kafka=kafka)

    assert sorted(rig.engine.transactional_ids()) == [txn(TP0), txn(TP1)]
    assert kafka.producers[0].fenced
    assert [o.value for o in kafka.aborted] == [b"zombie"]
    assert all(p.started and not p.stopped for p in kafka.producers[1:])
    # Offsets read after the fencing; no committed offset yet: from the beginning of the partition.
    assert sorted(rig.consumer.seeks) == [(TP0, 0), (TP1, 5)]
    assert rig.engine.committed == {TP0: 0, TP1: 5}
    await previous.close_all()


async def test_records_are_not_taken_while_the_assignment_opens_its_producers(engines: Engines) -> None:
    kafka = FakeKafka()
    opened = asyncio.Event()

    class SlowToStart(FakeProducer):
        async def start(self) -> None:
            await opened.wait()
            await super().start()

    def build(transactional_id: str) -> FakeProducer:
        kafka.producers.append(producer := SlowToStart(kafka, transactional_id))
        return producer

    work = Work()
    rig = await engines.exactly_once(work, kafka=kafka, build=build, assign=[])
    assigning = asyncio.create_task(rig.assign(TP0))
    await wait_until(lambda: len(kafka.producers) == 1, what="the producer opening")

    await asyncio.wait_for(rig.engine.process(records("in", 0, range(2))), timeout=1)

    assert work.started == []
    assert len(kafka.producers) == 1  # not opened a second time for the records
    opened.set()
    await asyncio.wait_for(assigning, timeout=2)
    assert rig.consumer.seeks == [(TP0, 0)]
    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(2))


async def test_records_of_a_partition_not_assigned_are_dropped(engines: Engines) -> None:
    work = Work()
    rig = await engines.exactly_once(work, assign=[TP0])

    await rig.engine.process(records("in", 1, range(2)))

    assert work.started == []
    assert rig.kafka.producers_of(txn(TP1)) == []


# --- transactions -------------------------------------------------------------------------------


async def test_outputs_and_offsets_commit_in_one_transaction_per_partition_once_the_interval_passed(
    engines: Engines,
) -> None:
    rig = await engines.exactly_once(commit_interval_ms=200)
    began = time.monotonic()

    await rig.engine.process([*records("in", 0, range(3)), *records("in", 1, range(2))])

    await wait_until(lambda: rig.offsets == {TP0: 3, TP1: 2}, what="the commits")
    assert time.monotonic() - began >= 0.2
    assert rig.visible(TP0) == values(TP0, range(3))
    assert rig.visible(TP1) == values(TP1, range(2))
    assert {(o.topic, o.key, tuple(o.headers)) for o in rig.kafka.records} == {
        ("out", b"k0", (("n", b"1"),)),
        ("out", b"k1", (("n", b"1"),)),
    }
    assert rig.producer(TP0).transactions == ["committed"]
    assert rig.producer(TP1).transactions == ["committed"]
    assert rig.metric("transactions_total", result="committed") == 2
    assert rig.engine.committed == {TP0: 3, TP1: 2}
    assert rig.consumer.commits == []  # offsets go through the transaction, never the consumer


async def test_each_commit_round_commits_what_was_published_since_the_last(engines: Engines) -> None:
    rig = await engines.exactly_once(assign=[TP0])
    await rig.engine.process(records("in", 0, range(3)))
    await sent(rig, TP0, range(3))
    await rig.commit_round()

    await rig.engine.process(records("in", 0, range(1, 5)))  # 1 and 2 again: skipped

    await sent(rig, TP0, range(3, 5))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(5))
    assert rig.offsets == {TP0: 5}
    assert rig.producer(TP0).transactions == ["committed", "committed"]


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["send", "ack"])
async def test_a_failed_send_aborts_re_creates_the_producer_and_rewinds_to_the_committed_offset(
    engines: Engines, failure: str
) -> None:
    rig = await engines.exactly_once()
    first = rig.producer(TP0)
    faults = first.send_failures if failure == "send" else first.ack_failures
    faults.add(KafkaTimeoutError(), where=value_is(value(TP0, 1)))
    rig.consumer.seeks.clear()

    await rig.engine.process([*records("in", 0, range(3)), *records("in", 1, range(2))])
    # A batch the producer refused, or one the broker did not ack: either shows when the
    # transaction commits. (A refused batch takes the partition's later batches down with it.)
    await wait_until(lambda: len(first.sent) == (1 if failure == "send" else 3), what="TP0's sends")
    await sent(rig, TP1, range(2))
    await rig.commit_round()

    # Nothing of TP0's transaction is visible and its offset did not move; TP1 committed.
    await rewound(rig, TP0, 0)
    assert rig.visible(TP0) == []
    assert value(TP0, 0) in [o.value for o in rig.kafka.aborted]
    assert rig.offsets == {TP1: 2}
    assert aborted(rig) == 1
    # A new producer with the same transactional.id replaced the old one.
    assert rig.kafka.producers_of(txn(TP0)) == [first, rig.producer(TP0)]
    assert first.stopped
    assert not rig.producer(TP0).stopped
    assert rig.consumer.pauses == [TP0]  # for a backoff

    await rig.engine.process(records("in", 0, range(3)))
    await sent(rig, TP0, range(3))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(3))
    assert rig.offsets == {TP0: 3, TP1: 2}


async def test_a_rewind_goes_to_the_last_committed_offset(engines: Engines) -> None:
    rig = await engines.exactly_once(assign=[TP0])
    await rig.engine.process(records("in", 0, range(3)))
    await sent(rig, TP0, range(3))
    await rig.commit_round()
    rig.producer(TP0).send_failures.add(KafkaConnectionError(), where=value_is(value(TP0, 4)), times=1)

    await rig.engine.process(records("in", 0, range(3, 6)))
    await wait_until(lambda: value(TP0, 3) in rig.sent(TP0), what="the batch before the refused one")
    await rig.commit_round()  # the refused batch fails the transaction

    await rewound(rig, TP0, 3)
    assert rig.offsets == {TP0: 3}
    # The records after the rewind point are processed again, not skipped as already seen.
    await rig.engine.process(records("in", 0, range(3, 6)))
    await sent(rig, TP0, range(3, 6))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(6))
    assert rig.offsets == {TP0: 6}


async def test_a_failed_commit_aborts_and_rewinds(engines: Engines) -> None:
    rig = await engines.exactly_once(assign=[TP0])
    rig.producer(TP0).commit_errors.append(KafkaConnectionError())
    rig.consumer.seeks.clear()
    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))

    await rig.commit_round()

    assert rig.visible(TP0) == []
    assert rig.metric("commit_failures_total") == 1
    assert aborted(rig) == 1
    assert rig.consumer.seeks == [(TP0, 0)]
    assert rig.consumer.pauses == [TP0]  # for a backoff


async def test_a_commit_that_times_out_re_creates_the_producer_and_rewinds(engines: Engines) -> None:
    rig = await engines.exactly_once(commit_timeout_ms=50, assign=[TP0])
    hanging = rig.producer(TP0)
    hanging.commit_hangs = True
    rig.consumer.seeks.clear()
    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))

    await asyncio.wait_for(rig.commit_round(), timeout=1)

    assert rig.metric("commit_failures_total") == 1
    assert aborted(rig) == 1
    assert rig.kafka.producers_of(txn(TP0)) == [hanging, rig.producer(TP0)]
    assert hanging.stopped
    assert rig.visible(TP0) == []
    assert rig.offsets == {}
    assert rig.consumer.seeks == [(TP0, 0)]
    assert rig.consumer.pauses == [TP0]  # for a backoff

    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(2))
    assert rig.offsets == {TP0: 2}


@pytest.mark.parametrize("error", [ProducerFenced(), InvalidProducerEpoch()])
async def test_a_fenced_producer_is_closed_and_not_reopened_until_the_next_assignment(
    engines: Engines, error: Exception
) -> None:
    work = Work()
    rig = await engines.exactly_once(work)
    fenced = rig.producer(TP0)
    fenced.send_failures.add(error)
    rig.consumer.seeks.clear()

    await rig.engine.process([*records("in", 0, range(2)), *records("in", 1, range(2))])
    await wait_until(lambda: len(rig.engine.lanes[TP0].unacked) == 2, what="TP0's outputs handed over")
    await sent(rig, TP1, range(2))
    await rig.commit_round()  # the refused batches fail TP0's transaction

    await wait_until(lambda: fenced.stopped, what="the fenced producer closed")
    assert rig.visible(TP0) == []
    assert rig.offsets == {TP1: 2}
    assert aborted(rig) == 1
    # The partition is someone else's now: no rewind, no pause, no new producer, no records taken.
    assert rig.consumer.seeks == []
    assert rig.consumer.pauses == []
    assert rig.engine.transactional_ids() == [txn(TP1)]
    await rig.engine.process(records("in", 0, range(2, 4)))
    assert rig.kafka.producers_of(txn(TP0)) == [fenced]
    assert value(TP0, 2) not in work.started

    # Assigned again: a new producer, from the committed offset.
    await rig.assign(TP0)
    assert len(rig.kafka.producers_of(txn(TP0))) == 2
    assert rig.consumer.seeks == [(TP0, 0)]
    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(2))


async def test_a_producer_fenced_by_another_instance_mid_batch_loses_its_transaction(
    engines: Engines,
) -> None:
    kafka = FakeKafka()

    async def takeover(rec: Any) -> Sequence[OutgoingRecord]:
        if rec.offset == 1:
            kafka.fence(txn(TP0))  # another instance's producer initialised the same transactional.id
        return await echo(rec)

    rig = await engines.exactly_once(takeover, kafka=kafka, assign=[TP0])
    producer = kafka.current(txn(TP0))

    await rig.engine.process(records("in", 0, range(3)))

    await wait_until(lambda: len(rig.engine.lanes[TP0].unacked) == 3, what="the outputs handed over")
    await rig.commit_round()  # the fenced producer's refusals fail the transaction

    await wait_until(lambda: producer.stopped, what="the fenced producer closed")
    assert rig.visible(TP0) == []
    # Whatever of the transaction reached the producer before the fencing was aborted.
    assert {o.value for o in kafka.aborted} <= {value(TP0, 0)}
    assert rig.offsets == {}
    assert rig.engine.transactional_ids() == []


async def test_a_producer_that_cannot_be_opened_at_assignment_is_opened_when_records_arrive(
    engines: Engines,
) -> None:
    kafka = FakeKafka()
    kafka.start_failures[txn(TP0)] = [KafkaConnectionError(), KafkaConnectionError()]
    work = Work()
    rig = await engines.exactly_once(work, kafka=kafka)

    assert rig.engine.transactional_ids() == [txn(TP1)]
    (failed,) = kafka.producers_of(txn(TP0))
    assert failed.stopped  # a producer that failed to start is closed
    assert rig.consumer.seeks == [(TP1, 0)]

    # Opening fails again: the partition backs off.
    await rig.engine.process(records("in", 0, range(2)))
    assert rig.consumer.pauses == [TP0]
    await wait_until(lambda: rig.consumer.resumes == [TP0], what="the end of the backoff")

    # Opening succeeds: the partition is rewound, and what was fetched before is not processed.
    rig.consumer.seeks.clear()
    await rig.engine.process(records("in", 0, range(2)))
    assert rig.engine.transactional_ids() == [txn(TP1), txn(TP0)]
    assert rig.consumer.seeks == [(TP0, 0)]
    assert work.started == []

    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(2))


async def test_a_producer_that_cannot_be_re_created_is_opened_again_when_records_arrive(
    engines: Engines,
) -> None:
    rig = await engines.exactly_once(assign=[TP0])
    first = rig.producer(TP0)
    first.send_failures.add(KafkaConnectionError())
    rig.kafka.start_failures[txn(TP0)] = [KafkaConnectionError()]
    rig.consumer.seeks.clear()

    await rig.engine.process(records("in", 0, range(2)))
    await wait_until(lambda: len(rig.engine.lanes[TP0].unacked) == 2, what="the outputs handed over")
    await rig.commit_round()  # the refused batches fail the transaction

    await wait_until(lambda: len(rig.kafka.producers_of(txn(TP0))) == 2, what="the failed re-creation")
    assert rig.engine.transactional_ids() == []
    await rig.engine.process(records("in", 0, range(2)))  # re-opened, rewound
    assert rig.consumer.seeks == [(TP0, 0)]
    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(2))


async def test_records_of_an_aborted_transaction_are_not_skipped_when_the_rewind_fails(
    engines: Engines,
) -> None:
    rig = await engines.exactly_once(assign=[TP0])
    rig.producer(TP0).commit_errors.append(KafkaConnectionError())
    rig.consumer.committed_errors.append(GroupAuthorizationFailedError())
    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))
    await rig.commit_round()  # the commit fails, and so does reading the offset to rewind to

    assert rig.visible(TP0) == []
    assert aborted(rig) == 1
    # The consumer's position is past the aborted records: it fetches 2 and 3 next. Nothing may be
    # committed past 0 and 1: the partition is rewound to its committed offset first.
    await rig.engine.process(records("in", 0, range(2, 4)))
    assert rig.consumer.seeks[-1] == (TP0, 0)
    await rig.commit_round()
    assert rig.offsets == {}

    await rig.engine.process(records("in", 0, range(4)))
    await sent(rig, TP0, range(4))
    await rig.commit_round()
    assert rig.visible(TP0) == values(TP0, range(4))
    assert rig.offsets == {TP0: 4}


async def test_a_batch_fetched_before_a_rewind_is_fetched_again(engines: Engines) -> None:
    rig = await engines.exactly_once(assign=[TP0])
    rig.producer(TP0).ack_failures.add(KafkaTimeoutError(), where=value_is(value(TP0, 1)))
    await rig.engine.process(records("in", 0, range(3)))
    await sent(rig, TP0, range(2))
    await rig.commit_round()  # aborts, and rewinds to 0
    rig.consumer.seeks.clear()

    await rig.engine.process(records("in", 0, range(3, 6)))
    await rig.commit_round()

    assert rig.consumer.seeks == [(TP0, 0)], "fetched again from the rewind"
    assert rig.offsets == {}, "nothing committed past the aborted records"
    assert rig.visible(TP0) == []


# --- rebalances and shutdown --------------------------------------------------------------------


async def test_a_revocation_commits_the_open_transaction_of_the_records_in_flight_and_closes_the_producer(
    engines: Engines,
) -> None:
    work = Work()
    work.hold(value(TP0, 1))
    rig = await engines.exactly_once(work)
    await rig.engine.process([*records("in", 0, range(2)), *records("in", 1, range(3))])
    await sent(rig, TP0, range(1))
    await sent(rig, TP1, range(3))
    producer = rig.producer(TP0)

    revoking = asyncio.create_task(rig.revoke(TP0))
    await wait_until(lambda: rig.engine.lanes[TP0].closing, what="the revocation")
    assert not revoking.done()
    work.release(value(TP0, 1))
    await asyncio.wait_for(revoking, timeout=2)

    assert rig.visible(TP0) == values(TP0, range(2))
    assert rig.visible(TP1) == []  # its transaction stays open
    assert rig.offsets == {TP0: 2}
    assert producer.stopped
    assert rig.engine.transactional_ids() == [txn(TP1)]


async def test_a_revocation_commits_what_finished_and_abandons_what_does_not_within_the_drain_timeout(
    engines: Engines,
) -> None:
    work = Work()
    work.hold(value(TP0, 1))
    rig = await engines.exactly_once(work, assign=[TP0], drain_timeout_s=0.1)
    await rig.engine.process(records("in", 0, range(3)))
    await sent(rig, TP0, range(1))

    await asyncio.wait_for(rig.revoke(TP0), timeout=2)

    assert rig.visible(TP0) == values(TP0, range(1))
    assert rig.offsets == {TP0: 1}
    assert rig.engine.transactional_ids() == []
    assert all(p.stopped for p in rig.kafka.producers)
    # The abandoned record finishes later: it is not sent, and the record behind it is not processed.
    work.release(value(TP0, 1))
    await wait_until(lambda: value(TP0, 1) in work.finished, what="the abandoned record")
    assert value(TP0, 2) not in work.started
    assert rig.sent(TP0) == values(TP0, range(1))


async def test_a_commit_that_fails_after_its_partition_was_revoked_leaves_the_new_owner_alone(
    engines: Engines,
) -> None:
    """Seen in the chaos run: a commit hung through a broker restart, the revocation's drain gave up on
    it, and when it timed out the old owner re-created the partition's producer, fencing the new
    owner's. The new owner then took no record of the partition until the next rebalance."""
    rig = await engines.exactly_once(commit_timeout_ms=1000, drain_timeout_s=0.1, assign=[TP0])
    hanging = rig.producer(TP0)
    hanging.commit_hangs = True
    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))
    lane = rig.engine.lanes[TP0]
    committing = asyncio.create_task(rig.commit_round())
    await wait_until(lane.lock.locked, what="the commit under way")

    await asyncio.wait_for(rig.revoke(TP0), timeout=2)
    new_owner = PartitionProducers(rig.kafka.build, app_id=APP)
    assert await new_owner.open([TP0]) == {}
    rig.consumer.seeks.clear()
    await asyncio.wait_for(committing, timeout=3)  # the commit timed out meanwhile

    assert not new_owner[TP0].fenced
    assert rig.kafka.producers_of(txn(TP0)) == [hanging, new_owner[TP0]]
    assert rig.engine.transactional_ids() == []
    assert rig.consumer.seeks == []
    assert rig.visible(TP0) == []
    await new_owner.close_all()


async def test_drain_commits_what_is_open_and_close_stops_every_producer(engines: Engines) -> None:
    rig = await engines.exactly_once()
    await rig.engine.process([*records("in", 0, range(2)), *records("in", 1, range(1))])
    await sent(rig, TP0, range(2))
    await sent(rig, TP1, range(1))

    await rig.engine.drain(1.0)
    await rig.engine.close()

    assert rig.visible(TP0) == values(TP0, range(2))
    assert rig.visible(TP1) == values(TP1, range(1))
    assert rig.offsets == {TP0: 2, TP1: 1}
    assert all(p.stopped for p in rig.kafka.producers)


async def test_a_failed_commit_at_shutdown_leaves_nothing_visible_and_no_producer_open(
    engines: Engines,
) -> None:
    rig = await engines.exactly_once(assign=[TP0])
    await rig.engine.process(records("in", 0, range(2)))
    await sent(rig, TP0, range(2))
    rig.producer(TP0).commit_errors.append(KafkaConnectionError())

    await rig.engine.drain(1.0)
    await rig.engine.close()

    assert rig.visible(TP0) == []
    assert rig.offsets == {}
    assert all(p.stopped for p in rig.kafka.producers)


async def test_a_rebalance_opens_and_closes_the_producers(engines: Engines) -> None:
    rig = await engines.exactly_once(assign=[])
    rig.consumer.assigned.update({TP0, TP1})

    await rig.engine.assigned({TP0, TP1})
    assert sorted(rig.engine.transactional_ids()) == [txn(TP0), txn(TP1)]

    await rig.engine.revoked({TP0, TP1})
    assert rig.engine.transactional_ids() == []
    assert all(p.stopped for p in rig.kafka.producers)


# --- opens that a close overtakes (make chaos scenario 11) ---------------------------------------


async def test_an_open_that_a_close_overtakes_never_lands_and_the_close_waits_for_it() -> None:
    """A producer re-created while its partition is revoked must not be stored and handed out
    later: by then the next owner's producer fenced it, or it fences the next owner."""
    kafka = FakeKafka()
    gate = kafka.pid_gates[txn(TP0)] = asyncio.Event()
    producers = PartitionProducers(kafka.build, app_id=APP)
    opening = asyncio.create_task(producers.open([TP0]))
    await wait_until(lambda: len(kafka.producers_of(txn(TP0))) == 1, what="the open under way")

    closing = asyncio.create_task(producers.close([TP0]))
    await asyncio.sleep(0.05)
    assert not closing.done()  # waits for the open in flight

    gate.set()
    failed = await asyncio.wait_for(opening, timeout=2)
    await asyncio.wait_for(closing, timeout=2)
    assert isinstance(failed[TP0], ProducerClosed)
    assert TP0 not in producers
    (stale,) = kafka.producers_of(txn(TP0))
    assert stale.stopped

    new_owner = PartitionProducers(kafka.build, app_id=APP)
    assert await new_owner.open([TP0]) == {}
    assert kafka.current(txn(TP0)) is new_owner[TP0]
    assert not new_owner[TP0].fenced
    await new_owner.close_all()


async def test_a_close_waits_for_an_open_in_flight_only_so_long() -> None:
    kafka = FakeKafka()
    gate = kafka.pid_gates[txn(TP0)] = asyncio.Event()
    producers = PartitionProducers(kafka.build, app_id=APP, close_wait_s=0.1)
    opening = asyncio.create_task(producers.open([TP0]))
    await wait_until(lambda: len(kafka.producers_of(txn(TP0))) == 1, what="the open under way")

    started = time.monotonic()
    await asyncio.wait_for(producers.close([TP0]), timeout=2)
    assert time.monotonic() - started < 1

    gate.set()  # the open ends after the close returned: it still does not land
    assert isinstance((await asyncio.wait_for(opening, timeout=2))[TP0], ProducerClosed)
    assert TP0 not in producers
