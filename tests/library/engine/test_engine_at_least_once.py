"""The delivery engine with the at-least-once guarantee, over in-memory fakes: ordering, concurrency,
commits of the acknowledged prefix, rewinds, blocked partitions, backpressure, rebalances, shutdown."""

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)

from kafka_delivery.handlers.retry import DelayGate
from kafka_delivery.headers import RETRY_DUE_AT
from kafka_delivery.types import OutgoingRecord
from tests.support.engine import TP0, TP1, AtLeastOnceRig, Engines, Work, keyed, value
from tests.support.fakes import record, records, value_is, wait_until

RETRY = TopicPartition("in.retry", 0)


def values(tp: TopicPartition, offsets: range) -> list[bytes]:
    return [value(tp, o) for o in offsets]


async def committed(rig: AtLeastOnceRig, want: dict[TopicPartition, int]) -> None:
    """Wait until each partition given is committed at its offset."""
    await wait_until(lambda: {tp: rig.committed(tp) for tp in want} == want, what=f"commits {want}")


# --- ordering and concurrency -------------------------------------------------------------------


async def test_outputs_of_a_partition_are_published_in_offset_order_when_an_earlier_record_is_slower(
    engines: Engines,
) -> None:
    work = Work()
    work.hold(value(TP0, 0))
    rig = engines.at_least_once(work)

    await rig.engine.process([*keyed(TP0, range(4)), *keyed(TP1, range(2))])

    # The later records of TP0 are processed, and wait for the first; TP1 does not wait for TP0.
    await wait_until(lambda: set(values(TP0, range(1, 4))) <= set(work.finished), what="later records")
    await committed(rig, {TP1: 2})
    assert rig.outputs(TP1) == values(TP1, range(2))
    assert rig.outputs(TP0) == []
    assert rig.committed(TP0) is None

    work.release(value(TP0, 0))
    await committed(rig, {TP0: 4})
    assert rig.outputs(TP0) == values(TP0, range(4))


async def test_different_keys_run_at_once_and_one_key_runs_alone_in_offset_order(engines: Engines) -> None:
    work = Work(pause_s=0.002)
    rig = engines.at_least_once(work)
    batch = keyed(TP0, range(12), key=lambda o: b"k%d" % (o % 3))

    await rig.engine.process(batch)

    await committed(rig, {TP0: 12})
    assert work.most_at_once > 1
    assert work.most_of_one_key == 1
    for k in (b"k0", b"k1", b"k2"):
        of_key = [r.value for r in batch if r.key == k]
        assert [v for v in work.started if v in of_key] == of_key
    assert rig.outputs(TP0) == values(TP0, range(12))


async def test_partition_ordering_runs_the_records_of_a_partition_one_at_a_time(engines: Engines) -> None:
    work = Work(pause_s=0.002)
    rig = engines.at_least_once(work, ordering="partition")

    await rig.engine.process([*keyed(TP0, range(5)), *keyed(TP1, range(5))])

    await committed(rig, {TP0: 5, TP1: 5})
    assert work.most_at_once == 2  # one record of each partition
    assert [v for v in work.started if v in values(TP0, range(5))] == values(TP0, range(5))


async def test_max_in_flight_caps_the_records_processed_at_once(engines: Engines) -> None:
    work = Work()
    batch = keyed(TP0, range(10))
    work.hold(*(r.value for r in batch))
    rig = engines.at_least_once(work, max_in_flight=3)

    await rig.engine.process(batch)

    await wait_until(lambda: work.running() == 3, what="three records running")
    work.release(*(r.value for r in batch))
    await committed(rig, {TP0: 10})
    assert work.most_at_once == 3
    assert rig.outputs(TP0) == values(TP0, range(10))


async def test_a_cpu_bound_processor_leaves_the_event_loop_a_turn_every_few_records(
    engines: Engines,
) -> None:
    """Records run for at most 0.5 ms in one turn of the event loop (2 ms while hundreds are ready,
    and 2 ms for an eager engine's batch), however many workers are runnable: fetches, sends and
    acks, each a few turns long, are not kept waiting behind a large batch. (Counted in records
    between two turns, not in time: a slow machine only makes turns shorter.)"""
    per_record_s = 0.0005
    ticks: list[int] = []
    started: list[int] = []

    async def busy(rec: Any) -> Sequence[OutgoingRecord]:
        started.append(rec.offset)
        until = time.perf_counter() + per_record_s
        while time.perf_counter() < until:
            pass
        return [OutgoingRecord(topic="out", key=rec.key, value=rec.value)]

    loop = asyncio.get_running_loop()

    def tick() -> None:
        ticks.append(len(started))
        if len(started) < 400:
            loop.call_soon(tick)

    rig = engines.at_least_once(busy, max_in_flight=100)
    tick()
    await rig.engine.process(keyed(TP0, range(200)) + keyed(TP1, range(200)))
    await committed(rig, {TP0: 200, TP1: 200})

    per_turn = [b - a for a, b in itertools.pairwise(ticks)]
    assert sum(per_turn) == 400
    # At most 2 ms / 0.5 ms = 4 records, plus the one a turn's last worker starts as it ends, plus slack.
    assert max(per_turn) <= 8, per_turn


async def test_an_eager_engine_processes_and_publishes_a_batch_before_process_returns(
    eager_engines: Engines,
) -> None:
    rig = eager_engines.at_least_once()

    await rig.engine.process([*keyed(TP0, range(3)), *keyed(TP1, range(2))])

    assert rig.outputs(TP0) == values(TP0, range(3))  # handed to the producer, in offset order
    assert rig.outputs(TP1) == values(TP1, range(2))
    await committed(rig, {TP0: 3, TP1: 2})


async def test_an_eager_record_that_waits_goes_on_in_a_task_and_holds_only_its_key(
    eager_engines: Engines,
) -> None:
    work = Work()
    work.hold(value(TP0, 1))
    rig = eager_engines.at_least_once(work)
    key = {0: b"a", 1: b"b", 2: b"b", 3: b"c"}

    await rig.engine.process(keyed(TP0, range(4), key=lambda o: key[o]))

    # 1 waits in a task of its own; 2 (same key) waits for it; 0 and 3 are done, 3 waits to publish.
    assert work.finished == [value(TP0, 0), value(TP0, 3)]
    await wait_until(lambda: work.running() == 1, what="1 in its task")
    assert rig.outputs(TP0) == [value(TP0, 0)]
    assert rig.metric("records_in_flight", group="g") == 1

    work.release(value(TP0, 1))
    await committed(rig, {TP0: 4})
    assert rig.outputs(TP0) == values(TP0, range(4))
    assert work.started.index(value(TP0, 2)) > work.started.index(value(TP0, 1))


async def test_a_revocation_during_an_eager_batch_stops_it_there(eager_engines: Engines) -> None:
    """The batch yields a turn every 2 ms; a revocation in one of them ends the batch: what was not
    admitted is left to the partition's next owner."""
    started: list[int] = []
    revoking: list[asyncio.Task[None]] = []

    async def busy(rec: Any) -> Sequence[OutgoingRecord]:
        started.append(rec.offset)
        if rec.offset == 3:
            revoking.append(asyncio.create_task(rig.engine.revoked({TP0})))
        until = time.perf_counter() + 0.001
        while time.perf_counter() < until:
            pass
        return [OutgoingRecord(topic="out", key=rec.key, value=rec.value)]

    rig = eager_engines.at_least_once(busy)

    await rig.engine.process(keyed(TP0, range(50)))
    await asyncio.wait_for(revoking[0], timeout=2)

    assert 4 <= len(started) < 50
    assert started == list(range(len(started)))
    assert TP0 not in rig.engine.lanes
    # Committed at most up to what was processed; the rest is the next owner's.
    assert (rig.furthest_commit(TP0) or 0) <= len(started)


# --- commits ------------------------------------------------------------------------------------


async def test_a_commit_covers_only_the_contiguous_acknowledged_prefix(engines: Engines) -> None:
    rig = engines.at_least_once()
    ack = rig.sink.hold_ack(value(TP0, 1))

    await rig.engine.process(keyed(TP0, range(4)))

    await wait_until(lambda: len(rig.sink.acked) == 3, what="the acks of 0, 2 and 3")
    await committed(rig, {TP0: 1})
    await rig.commit_round()
    assert rig.furthest_commit(TP0) == 1  # 2 and 3 are acked, but 1 is not

    ack.set()
    await committed(rig, {TP0: 4})


async def test_a_record_with_several_outputs_is_committed_only_when_all_are_acked(engines: Engines) -> None:
    async def fan_out(rec: Any) -> Sequence[OutgoingRecord]:
        return [OutgoingRecord("a", rec.value, rec.key), OutgoingRecord("b", rec.value, rec.key)]

    rig = engines.at_least_once(fan_out)
    rig.sink.ack_failures.add(KafkaTimeoutError(), where=lambda o: (o.topic, o.value) == ("b", value(TP0, 1)))

    await rig.engine.process(records("in", 0, range(3)))

    await wait_until(lambda: rig.consumer.seeks == [(TP0, 1)], what="the rewind")
    await rig.commit_round()
    assert rig.furthest_commit(TP0) == 1


async def test_a_failed_offset_commit_is_retried_by_a_later_round(engines: Engines) -> None:
    rig = engines.at_least_once()
    rig.consumer.commit_errors.append(CommitFailedError("rebalancing"))

    await rig.engine.process(records("in", 0, range(3)))

    await committed(rig, {TP0: 3})
    assert rig.metric("commit_failures_total") == 1
    assert rig.consumer.seeks == []  # the acknowledged records need no processing again


# --- failures and rewinds -----------------------------------------------------------------------


async def test_a_failed_ack_rewinds_and_pauses_only_its_partition_then_the_records_run_again(
    engines: Engines,
) -> None:
    work = Work()
    rig = engines.at_least_once(work, backoff_ms=20)
    rig.sink.ack_failures.add(NotLeaderForPartitionError(), where=value_is(value(TP0, 2)), times=1)

    await rig.engine.process([*records("in", 0, range(5)), *records("in", 1, range(2))])

    # TP0 commits up to the record whose output was not acked; TP1 commits all of its records.
    await committed(rig, {TP0: 2, TP1: 2})
    assert rig.consumer.seeks == [(TP0, 2)]
    assert rig.consumer.pauses == [TP0]
    assert rig.metric("publish_failures_total") == 1
    assert rig.engine.backoff.blocked == {}  # a transient failure does not block
    await wait_until(lambda: rig.consumer.resumes == [TP0], what="the end of the backoff")

    await rig.engine.process(records("in", 0, range(2, 5)))

    await committed(rig, {TP0: 5})
    assert [work.started.count(v) for v in values(TP0, range(5))] == [1, 1, 2, 2, 2]
    assert rig.outputs(TP0) == values(TP0, range(5)) + values(TP0, range(2, 5))
    acked = [o.value for o in rig.sink.acked]
    assert acked.count(value(TP0, 2)) == 1  # the failed one, acked at its second send


async def with_idle_committer(engines: Engines) -> AtLeastOnceRig:
    """A rig whose committer has just made a round, and makes its next one a minute later."""
    rig = engines.at_least_once(commit_interval_ms=60_000)
    await rig.engine.process(records("in", 1, range(1)))
    await committed(rig, {TP1: 1})
    return rig


async def test_a_refused_output_stops_its_partition_before_it_publishes_anything_more(
    engines: Engines,
) -> None:
    # The committer's next round is a minute away: the partition stops when the ack fails, not when
    # a commit round finds it. Records fetched meanwhile and published would land after the refused
    # output and before it is published again: out of input order.
    rig = await with_idle_committer(engines)
    rig.sink.ack_failures.add(KafkaTimeoutError(), where=value_is(value(TP0, 0)), times=1)

    await rig.engine.process(records("in", 0, range(2)))
    await wait_until(lambda: rig.consumer.seeks == [(TP0, 0)], what="the rewind")
    assert rig.metric("publish_failures_total") == 1
    await rig.engine.process(records("in", 0, range(2, 4)))  # fetched before the seek took effect

    assert rig.outputs(TP0) == values(TP0, range(2))
    await wait_until(lambda: not rig.engine.lanes[TP0].failing, what="the recovery")
    await rig.engine.process(records("in", 0, range(4)))
    again = values(TP0, range(2)) + values(TP0, range(4))
    await wait_until(lambda: rig.outputs(TP0) == again, what="the outputs again, in order")


async def test_a_rewind_goes_back_to_an_earlier_output_refused_while_the_partition_failed(
    eager_engines: Engines,
) -> None:
    rig = await with_idle_committer(eager_engines)
    first_ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    send = rig.sink.send

    def holding_the_first_ack(out: OutgoingRecord) -> "asyncio.Future[Any]":
        if out.value != value(TP0, 0):
            return send(out)
        rig.sink.sent.append(out)
        return first_ack

    rig.sink.send = holding_the_first_ack  # type: ignore[method-assign,assignment]
    rig.sink.send_failures.add(KafkaConnectionError(), where=value_is(value(TP0, 1)), times=1)
    await rig.engine.process(records("in", 0, range(1)))

    # The broker refuses 0; before the engine hears of it, 1 cannot be handed over.
    first_ack.set_exception(KafkaTimeoutError())
    await rig.engine.process(records("in", 0, range(1, 2)))

    # The partition is fetched again from 0, not from 1: 1 must not be published before 0 is.
    await wait_until(lambda: bool(rig.consumer.seeks), what="the rewind")
    assert rig.consumer.seeks == [(TP0, 0)]


async def test_a_cancelled_ack_counts_as_not_acked(engines: Engines) -> None:
    rig = engines.at_least_once()
    rig.sink.ack_failures.add(asyncio.CancelledError(), where=value_is(value(TP0, 0)))

    await rig.engine.process(records("in", 0, range(2)))

    await wait_until(lambda: rig.consumer.seeks == [(TP0, 0)], what="the rewind")
    assert rig.consumer.commits == []
    assert rig.metric("publish_failures_total") == 1


@pytest.mark.parametrize("where", ["handler", "send"])
async def test_a_record_that_cannot_be_handed_over_rewinds_its_partition_to_it(
    engines: Engines, where: str
) -> None:
    work = Work()
    rig = engines.at_least_once(work)
    if where == "handler":
        work.fail_once(value(TP0, 1), ConnectionError("database away"))
    else:
        rig.sink.send_failures.add(KafkaConnectionError(), where=value_is(value(TP0, 1)), times=1)

    await rig.engine.process([*records("in", 0, range(4)), *records("in", 1, range(3))])

    await committed(rig, {TP0: 1, TP1: 3})
    # Nothing after the failed record of TP0 is sent: outputs stay in offset order when it is retried.
    assert rig.outputs(TP0) == [value(TP0, 0)]
    assert rig.consumer.seeks == [(TP0, 1)]
    assert rig.consumer.pauses == [TP0]
    assert rig.metric("publish_failures_total") == 1

    await rig.engine.process(records("in", 0, range(1, 4)))
    await committed(rig, {TP0: 4})
    assert rig.outputs(TP0) == values(TP0, range(4))


async def test_a_batch_fetched_before_a_rewind_is_dropped_and_its_partition_fetched_again(
    engines: Engines,
) -> None:
    work = Work()
    rig = engines.at_least_once(work)
    rig.sink.send_failures.add(KafkaConnectionError(), where=value_is(value(TP0, 1)), times=1)
    await rig.engine.process(records("in", 0, range(3)))
    await wait_until(lambda: rig.consumer.seeks == [(TP0, 1)], what="the rewind")

    await rig.engine.process(records("in", 0, range(3, 6)))  # fetched before the seek took effect

    assert rig.consumer.seeks == [(TP0, 1), (TP0, 1)]
    assert not set(values(TP0, range(3, 6))) & set(work.started)
    await rig.engine.process(records("in", 0, range(1, 6)))
    await committed(rig, {TP0: 6})
    assert rig.outputs(TP0) == values(TP0, range(6))


async def test_records_fetched_again_while_a_dropped_record_is_still_unacknowledged_are_published(
    engines: Engines,
) -> None:
    rig = engines.at_least_once()
    rig.sink.ack_failures.add(KafkaTimeoutError(), where=value_is(value(TP0, 0)), times=1)
    acking = rig.sink.hold_ack(value(TP0, 1))  # a broker that has not answered yet

    await rig.engine.process(keyed(TP0, range(2)))
    # The ack of 0 fails while 1 waits for its own: both are dropped, and fetched again.
    await wait_until(lambda: rig.consumer.seeks == [(TP0, 0)], what="the rewind")
    await wait_until(lambda: not rig.engine.lanes[TP0].failing, what="the recovery")
    await rig.engine.process(keyed(TP0, range(2)))
    acking.set()

    await committed(rig, {TP0: 2})
    assert rig.outputs(TP0)[-2:] == values(TP0, range(2))


@pytest.mark.parametrize(
    ("error", "reason"),
    [(MessageSizeTooLargeError(), "record_too_large"), (TopicAuthorizationFailedError(), "not_authorized")],
)
async def test_a_refused_publish_blocks_the_partition_until_a_commit_moves_past_it(
    engines: Engines, error: Exception, reason: str
) -> None:
    rig = engines.at_least_once()
    rig.sink.ack_failures.add(error, where=value_is(value(TP0, 1)))

    await rig.engine.process([*records("in", 0, range(3)), *records("in", 1, range(2))])

    await committed(rig, {TP0: 1, TP1: 2})
    await wait_until(lambda: rig.blocked(TP0, reason) == 1, what="the block")
    assert rig.blocked(TP1, reason) is None
    assert rig.metric("publish_refusals_total", reason=reason) == 1
    assert {tp: (b.offset, b.reason) for tp, b in rig.engine.backoff.blocked.items()} == {TP0: (1, reason)}

    # Refused again at the same record: counted, still one block, nothing committed past it.
    await rig.engine.process(records("in", 0, range(1, 3)))
    await wait_until(lambda: rig.metric("publish_refusals_total", reason=reason) == 2, what="the refusal")
    assert rig.blocked(TP0, reason) == 1
    assert rig.furthest_commit(TP0) == 1

    # The cause is fixed (topic enlarged, ACL granted): the record lands and the block clears.
    rig.sink.ack_failures.clear()
    await rig.engine.process(records("in", 0, range(1, 3)))
    await committed(rig, {TP0: 3})
    assert rig.blocked(TP0, reason) is None
    assert rig.engine.backoff.blocked == {}


# --- backpressure and delays --------------------------------------------------------------------


async def test_a_full_partition_is_paused_until_its_records_are_committed(engines: Engines) -> None:
    work = Work()
    work.hold(value(TP0, 0))
    rig = engines.at_least_once(work, max_buffered=4, max_in_flight=10)

    await rig.engine.process([*keyed(TP0, range(5)), *keyed(TP1, range(2))])

    assert rig.consumer.paused == {TP0}
    await committed(rig, {TP1: 2})
    assert rig.consumer.paused == {TP0}  # still full: its first record holds the rest

    work.release(value(TP0, 0))
    await committed(rig, {TP0: 5})
    await wait_until(lambda: rig.consumer.paused == set(), what="the resume")
    assert rig.consumer.resumes == [TP0]


async def test_a_record_not_due_yet_holds_its_partition_until_it_is_due(engines: Engines) -> None:
    rig = engines.at_least_once(gate=DelayGate(), assigned=[RETRY])
    due = str(int((time.time() + 0.2) * 1000)).encode()
    later = [
        record(RETRY.topic, 0, 1, value=b"later", headers=[(RETRY_DUE_AT, due)]),
        record(RETRY.topic, 0, 2, value=b"behind"),
    ]

    await rig.engine.process([record(RETRY.topic, 0, 0, value=b"ready"), *later])

    await committed(rig, {RETRY: 1})
    assert rig.sink.values() == [b"ready"]
    assert rig.consumer.seeks == [(RETRY, 1)]
    assert rig.consumer.paused == {RETRY}

    await wait_until(lambda: rig.consumer.paused == set(), what="the due time")
    assert rig.consumer.resumed_at[RETRY] >= int(due) / 1000 - 0.002
    await rig.engine.process(later)
    await committed(rig, {RETRY: 3})
    assert rig.sink.values() == [b"ready", b"later", b"behind"]


# --- rebalances and shutdown --------------------------------------------------------------------


async def test_a_revocation_waits_for_the_records_in_flight_and_commits_them(engines: Engines) -> None:
    work = Work()
    work.hold(value(TP0, 1))
    rig = engines.at_least_once(work)
    await rig.engine.process(keyed(TP0, range(3)))
    await committed(rig, {TP0: 1})

    revoking = asyncio.create_task(rig.engine.revoked({TP0}))
    await wait_until(lambda: rig.engine.lanes[TP0].closing, what="the revocation")
    await rig.engine.process(keyed(TP0, range(3, 5)))  # a revoked partition takes nothing more
    assert not revoking.done()

    work.release(value(TP0, 1))
    await asyncio.wait_for(revoking, timeout=2)
    assert rig.committed(TP0) == 3
    assert TP0 not in rig.engine.lanes
    assert not set(values(TP0, range(3, 5))) & set(work.started)


async def test_a_revocation_abandons_what_does_not_finish_within_the_drain_timeout(engines: Engines) -> None:
    work = Work()
    work.hold(value(TP0, 1))
    rig = engines.at_least_once(work, drain_timeout_s=0.1)
    await rig.engine.process(keyed(TP0, range(4)))
    await committed(rig, {TP0: 1})
    await wait_until(lambda: len(work.finished) == 3, what="2 and 3, processed behind 1")

    await asyncio.wait_for(rig.engine.revoked({TP0}), timeout=2)

    assert rig.furthest_commit(TP0) == 1
    assert TP0 not in rig.engine.lanes
    # The abandoned record finishes later: it is neither published nor committed.
    work.release(value(TP0, 1))
    await wait_until(lambda: value(TP0, 1) in work.finished, what="the abandoned record")
    await rig.commit_round()
    assert value(TP0, 1) not in rig.sink.values()
    assert rig.furthest_commit(TP0) == 1


async def test_a_revocation_the_group_refuses_to_commit_abandons_at_once_without_retrying(
    engines: Engines, caplog: pytest.LogCaptureFixture
) -> None:
    """An expelled member's drain: the group refuses its commits (CommitFailedError) until it has
    joined again, so retrying them for the drain's 10 s only delays the rejoin."""
    rig = engines.at_least_once(drain_timeout_s=10)
    await rig.engine.process(keyed(TP0, range(2)))
    await committed(rig, {TP0: 2})
    refused = [CommitFailedError("the group has already rebalanced") for _ in range(1000)]
    rig.consumer.commit_errors += refused
    await rig.engine.process(keyed(TP0, range(2, 4)))  # processed and acknowledged, never committed
    await wait_until(lambda: len(rig.consumer.commit_errors) < 1000, what="a refused commit round")

    started = time.monotonic()
    await asyncio.wait_for(rig.engine.revoked({TP0}), timeout=5)

    assert time.monotonic() - started < 1
    assert rig.furthest_commit(TP0) == 2
    assert TP0 not in rig.engine.lanes
    assert any("the group moved on" in r.getMessage() for r in caplog.records)


async def test_commits_failing_in_a_row_warn_once(engines: Engines, caplog: pytest.LogCaptureFixture) -> None:
    rig = engines.at_least_once()
    rig.consumer.commit_errors += [KafkaConnectionError("coordinator out of reach")] * 3

    await rig.engine.process(records("in", 0, range(3)))

    await committed(rig, {TP0: 3})
    assert rig.metric("commit_failures_total") == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w for w in warnings if "offset commit failed" in w] == [
        "offset commit failed; retrying with the next rounds: "
        "KafkaConnectionError('coordinator out of reach')"
    ]
    assert any("succeed again after 3 failed rounds" in r.getMessage() for r in caplog.records)


async def test_a_revoked_partition_is_no_longer_reported_blocked(engines: Engines) -> None:
    rig = engines.at_least_once()
    rig.sink.ack_failures.add(MessageSizeTooLargeError(), where=value_is(value(TP0, 0)))
    await rig.engine.process(records("in", 0, range(2)))
    await wait_until(lambda: rig.blocked(TP0, "record_too_large") == 1, what="the block")

    await rig.engine.revoked({TP0})

    assert rig.blocked(TP0, "record_too_large") is None
    assert rig.engine.backoff.blocked == {}
    assert rig.metric("publish_refusals_total", reason="record_too_large") == 1


async def test_drain_commits_what_finishes_in_time_abandons_the_rest_and_takes_nothing_more(
    engines: Engines,
) -> None:
    work = Work()
    work.hold(value(TP0, 1), value(TP1, 0))
    rig = engines.at_least_once(work)
    await rig.engine.process([*keyed(TP0, range(3)), *keyed(TP1, range(2))])
    await committed(rig, {TP0: 1})

    draining = asyncio.create_task(rig.engine.drain(0.3))
    await wait_until(lambda: rig.consumer.paused == {TP0, TP1}, what="the partitions paused")
    work.release(value(TP0, 1))  # finishes within the drain; TP1's first record does not
    await asyncio.wait_for(draining, timeout=2)

    assert rig.committed(TP0) == 3
    assert rig.furthest_commit(TP1) is None
    assert rig.engine.lanes == {}
    await rig.engine.process(keyed(TP0, range(3, 5)))
    assert not set(values(TP0, range(3, 5))) & set(work.started)


async def test_without_a_consumer_outputs_are_published_in_order_and_nothing_is_committed(
    engines: Engines,
) -> None:
    rig = engines.at_least_once(started=False)

    await rig.engine.process(keyed(TP0, range(3)))

    await wait_until(lambda: rig.outputs(TP0) == values(TP0, range(3)), what="the outputs")
    assert rig.consumer.commits == []
    assert rig.engine.transactional_ids() == []


async def test_records_of_a_partition_not_assigned_are_not_processed(engines: Engines) -> None:
    work = Work()
    rig = engines.at_least_once(work, assigned=[TP0])

    await rig.engine.process(keyed(TP1, range(2)))

    assert work.started == []
    assert TP1 not in rig.engine.lanes


# --- flow metrics -------------------------------------------------------------------------------


async def test_the_flow_metrics_show_a_stuck_key(engines: Engines) -> None:
    work = Work()
    work.hold(value(TP0, 1))
    rig = engines.at_least_once(work)
    key = {0: b"a", 1: b"stuck"}

    await rig.engine.process(keyed(TP0, range(5), key=lambda o: key.get(o, b"b")))

    await committed(rig, {TP0: 1})
    await wait_until(lambda: len(work.finished) == 4, what="every record but the stuck one")
    assert rig.metric("records_in_flight", group="g") == 1
    assert rig.flow("buffered_records", TP0) == 4
    assert rig.flow("processed_uncommitted_records", TP0) == 4
    assert (rig.flow("oldest_unfinished_record_age_seconds", TP0) or 0) > 0

    work.release(value(TP0, 1))
    await committed(rig, {TP0: 5})
    assert rig.metric("records_in_flight", group="g") == 0
    assert rig.flow("buffered_records", TP0) == 0
    assert rig.flow("processed_uncommitted_records", TP0) == 0
    assert rig.flow("oldest_unfinished_record_age_seconds", TP0) == 0
