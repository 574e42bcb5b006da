"""Exactly-once TransactionalPipeline over in-memory fakes: transactions, rewinds, fencing, timeouts.

FakeKafka plays the broker side: records become visible, and offsets committed, only when a
transaction commits; a producer initialised with a transactional.id fences the previous one.
"""

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaTimeoutError,
    ProducerFenced,
)
from prometheus_client import CollectorRegistry

from order_service.messaging.metrics import PipelineMetrics
from order_service.messaging.pipeline_base import PipelineParts
from order_service.messaging.records import OutgoingRecord, RecordHandler
from order_service.messaging.retry import DUE_AT, DelayGate
from order_service.messaging.transactional import TransactionalPipeline
from order_service.messaging.transactional_producers import PartitionProducers, transactional_id
from tests.support.fakes import (
    FakeConsumer,
    FakeKafka,
    FakeProducer,
    record,
    records,
    sample,
    value_is,
    wait_until,
)

APP = "app"
GROUP = "g"
TP0 = TopicPartition("in", 0)
TP1 = TopicPartition("in", 1)


async def echo(rec: Any) -> Sequence[OutgoingRecord]:
    return [OutgoingRecord(topic="out", key=rec.key, value=rec.value, headers=[("n", b"1")])]


def b(tp: TopicPartition, offset: int) -> bytes:
    return f"{tp.topic}-{tp.partition}@{offset}".encode()


def txn(tp: TopicPartition) -> str:
    return transactional_id(APP, tp)


@dataclass
class Rig:
    pipeline: TransactionalPipeline
    kafka: FakeKafka
    consumer: FakeConsumer
    registry: CollectorRegistry

    def producer(self, tp: TopicPartition) -> FakeProducer:
        return self.kafka.current(txn(tp))

    def visible(self, tp: TopicPartition) -> list[bytes | None]:
        """Outputs of `tp`'s records that a read_committed consumer sees."""
        prefix = f"{tp.topic}-{tp.partition}@".encode()
        return [v for v in self.kafka.values("out") if v is not None and v.startswith(prefix)]

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        return self.kafka.group(GROUP)

    def metric(self, name: str, **labels: str) -> float | None:
        return sample(self.registry, f"t_{name}", **labels)

    async def assign(self, *partitions: TopicPartition) -> None:
        self.consumer.assigned.update(partitions)
        await self.pipeline.rebalance_listener().on_partitions_assigned(set(partitions))

    async def revoke(self, *partitions: TopicPartition) -> None:
        await self.pipeline.rebalance_listener().on_partitions_revoked(set(partitions))
        self.consumer.assigned.difference_update(partitions)


Factory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make() -> AsyncIterator[Factory]:
    made: list[Rig] = []

    async def build(
        handler: RecordHandler = echo,
        *,
        commit_interval_ms: int = 0,
        commit_timeout_ms: int = 30_000,
        gate: DelayGate | None = None,
        assign: Sequence[TopicPartition] = (TP0, TP1),
        kafka: FakeKafka | None = None,
    ) -> Rig:
        kafka = kafka or FakeKafka()
        registry = CollectorRegistry()
        pipeline = TransactionalPipeline(
            PipelineParts(
                handler, PipelineMetrics(registry, "t"), backoff_ms=20, max_backoff_ms=40, gate=gate
            ),
            PartitionProducers(kafka.build, app_id=APP),
            group_id=GROUP,
            commit_interval_ms=commit_interval_ms,
            commit_timeout_ms=commit_timeout_ms,
        )
        consumer = FakeConsumer(committed=kafka.group(GROUP))
        pipeline.consumer = lambda: consumer
        made.append(r := Rig(pipeline, kafka, consumer, registry))
        await r.assign(*assign)
        return r

    yield build
    for r in made:
        await r.pipeline.close()


async def test_assignment_opens_one_producer_per_partition_and_rewinds_to_the_committed_offsets(
    make: Factory,
) -> None:
    kafka = FakeKafka()
    kafka.group(GROUP)[TP1] = 5
    r = await make(kafka=kafka)

    assert sorted(r.pipeline.transactional_ids()) == ["app-in-0", "app-in-1"]
    assert all(p.started and not p.stopped for p in kafka.producers)
    # No committed offset yet: from the beginning of the partition.
    assert sorted(r.consumer.seeks) == [(TP0, 0), (TP1, 5)]
    assert r.pipeline.committed == {TP0: 0, TP1: 5}


async def test_outputs_and_offsets_are_committed_in_one_transaction_per_partition(make: Factory) -> None:
    r = await make()

    await r.pipeline.process([*records("in", 0, range(3)), *records("in", 1, range(2))])

    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1), b(TP0, 2)]
    assert r.visible(TP1) == [b(TP1, 0), b(TP1, 1)]
    assert {(o.topic, o.key, tuple(o.headers)) for o in r.kafka.records} == {
        ("out", b"k0", (("n", b"1"),)),
        ("out", b"k1", (("n", b"1"),)),
    }
    assert r.offsets == {TP0: 3, TP1: 2}
    assert r.pipeline.committed == {TP0: 3, TP1: 2}
    assert r.producer(TP0).transactions == ["committed"]
    assert r.producer(TP1).transactions == ["committed"]
    assert r.metric("transactions_total", result="committed") == 2
    assert r.consumer.commits == []  # offsets go through the transaction, never the consumer
    assert r.metric("batch_size_records_sum") == 5


async def test_records_behind_what_was_already_processed_are_skipped(make: Factory) -> None:
    r = await make()
    await r.pipeline.process(records("in", 0, range(3)))
    await r.pipeline.process(records("in", 0, range(1, 5)))
    assert r.visible(TP0) == [b(TP0, o) for o in range(5)]
    assert r.offsets == {TP0: 5}


@pytest.mark.parametrize("failure", ["send", "ack"])
async def test_a_failed_send_aborts_re_creates_the_producer_and_rewinds_the_partition(
    make: Factory, failure: str
) -> None:
    r = await make()
    first = r.producer(TP0)
    faults = first.send_failures if failure == "send" else first.ack_failures
    faults.add(KafkaTimeoutError(), where=value_is(b(TP0, 1)))
    r.consumer.seeks.clear()

    await r.pipeline.process([*records("in", 0, range(3)), *records("in", 1, range(2))])

    # Nothing of TP0's transaction is visible and its offset did not move; TP1 committed.
    assert r.visible(TP0) == []
    assert b(TP0, 0) in [o.value for o in r.kafka.aborted]
    assert r.offsets == {TP1: 2}
    assert r.metric("transactions_total", result="aborted") == 1
    assert r.metric("transactions_total", result="committed") == 1
    # A new producer with the same transactional.id replaced the old one.
    assert r.kafka.producers_of(txn(TP0)) == [first, r.producer(TP0)]
    assert first.stopped
    assert not r.producer(TP0).stopped
    # Rewound to the committed offset (none yet: the beginning), paused for a backoff.
    assert r.consumer.seeks[-1] == (TP0, 0)
    assert r.consumer.pauses == [TP0]  # paused for a backoff (and resumed after it)

    await r.pipeline.process(records("in", 0, range(3)))
    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1), b(TP0, 2)]
    assert r.offsets == {TP0: 3, TP1: 2}


async def test_a_rewind_goes_to_the_last_committed_offset(make: Factory) -> None:
    r = await make()
    await r.pipeline.process(records("in", 0, range(3)))
    r.producer(TP0).send_failures.add(KafkaConnectionError(), where=value_is(b(TP0, 4)))

    await r.pipeline.process(records("in", 0, range(3, 6)))

    assert r.consumer.seeks[-1] == (TP0, 3)
    assert r.offsets == {TP0: 3}
    # The records after the rewind point are processed again, not skipped as already seen.
    await r.pipeline.process(records("in", 0, range(3, 6)))
    assert r.visible(TP0) == [b(TP0, o) for o in range(6)]
    assert r.offsets == {TP0: 6}


@pytest.mark.parametrize("error", [ProducerFenced(), InvalidProducerEpoch()])
async def test_a_fenced_producer_is_closed_and_not_reopened_until_the_next_assignment(
    make: Factory, error: Exception
) -> None:
    r = await make()
    fenced = r.producer(TP0)
    fenced.send_failures.add(error)
    r.consumer.seeks.clear()

    await r.pipeline.process([*records("in", 0, range(2)), *records("in", 1, range(2))])

    assert fenced.stopped
    assert r.visible(TP0) == []
    assert r.offsets == {TP1: 2}
    assert r.metric("transactions_total", result="aborted") == 1
    # The partition is someone else's now: no rewind, no pause, no new producer.
    assert r.consumer.seeks == []
    assert r.consumer.pauses == []
    assert r.pipeline.transactional_ids() == [txn(TP1)]

    await r.pipeline.process(records("in", 0, range(2, 4)))
    assert r.kafka.producers_of(txn(TP0)) == [fenced]
    assert r.visible(TP0) == []

    # Assigned again: a new producer, from the committed offset.
    await r.assign(TP0)
    assert len(r.kafka.producers_of(txn(TP0))) == 2
    assert r.consumer.seeks == [(TP0, 0)]
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1)]


async def test_a_producer_fenced_by_another_instance_mid_batch_loses_its_transaction(make: Factory) -> None:
    kafka = FakeKafka()

    async def takeover(rec: Any) -> Sequence[OutgoingRecord]:
        if rec.offset == 1:
            kafka.fence(txn(TP0))  # another instance's producer initialised the same transactional.id
        return await echo(rec)

    r = await make(takeover, kafka=kafka, assign=[TP0])
    await r.pipeline.process(records("in", 0, range(3)))

    assert r.visible(TP0) == []
    assert [o.value for o in kafka.aborted] == [b(TP0, 0)]
    assert r.offsets == {}
    assert r.pipeline.transactional_ids() == []


async def test_a_commit_that_times_out_re_creates_the_producer_and_rewinds(make: Factory) -> None:
    r = await make(commit_timeout_ms=30, assign=[TP0])
    hanging = r.producer(TP0)
    hanging.commit_hangs = True
    r.consumer.seeks.clear()

    started = time.monotonic()
    await r.pipeline.process(records("in", 0, range(2)))

    assert time.monotonic() - started < 1
    assert r.metric("commit_failures_total") == 1
    assert r.kafka.producers_of(txn(TP0)) == [hanging, r.producer(TP0)]
    assert hanging.stopped
    assert r.visible(TP0) == []
    assert r.offsets == {}
    assert r.consumer.seeks[-1] == (TP0, 0)
    assert r.consumer.pauses == [TP0]  # paused for a backoff (and resumed after it)

    await r.pipeline.process(records("in", 0, range(2)))
    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1)]
    assert r.offsets == {TP0: 2}


async def test_a_failed_commit_aborts_and_rewinds(make: Factory) -> None:
    r = await make(assign=[TP0])
    r.producer(TP0).commit_errors.append(KafkaConnectionError())
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.visible(TP0) == []
    assert r.metric("transactions_total", result="aborted") == 1
    assert r.consumer.pauses == [TP0]  # paused for a backoff (and resumed after it)


async def test_a_producer_that_cannot_be_opened_at_assignment_is_opened_when_records_arrive(
    make: Factory,
) -> None:
    kafka = FakeKafka()
    kafka.start_failures[txn(TP0)] = [KafkaConnectionError(), KafkaConnectionError()]
    r = await make(kafka=kafka)

    assert r.pipeline.transactional_ids() == [txn(TP1)]
    failed = kafka.producers_of(txn(TP0))
    assert len(failed) == 1
    assert failed[0].stopped  # a producer that failed to start is closed
    assert r.consumer.seeks == [(TP1, 0)]

    # Opening fails again: the partition backs off from where it would start.
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.visible(TP0) == []
    assert r.consumer.seeks[-1] == (TP0, 0)
    assert r.consumer.pauses == [TP0]  # paused for a backoff (and resumed after it)

    # Opening succeeds: the partition is rewound, and what was fetched before is not processed.
    r.consumer.seeks.clear()
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.pipeline.transactional_ids() == [txn(TP1), txn(TP0)]
    assert r.consumer.seeks == [(TP0, 0)]
    assert r.visible(TP0) == []

    await r.pipeline.process(records("in", 0, range(2)))
    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1)]


async def test_a_producer_that_cannot_be_re_created_is_opened_again_later(make: Factory) -> None:
    r = await make(assign=[TP0])
    r.producer(TP0).send_failures.add(KafkaConnectionError())
    r.kafka.start_failures[txn(TP0)] = [KafkaConnectionError()]

    await r.pipeline.process(records("in", 0, range(2)))

    assert r.pipeline.transactional_ids() == []
    assert r.consumer.pauses == [TP0]  # paused for a backoff (and resumed after it)
    await r.pipeline.process(records("in", 0, range(2)))  # re-opened, rewound
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1)]


async def test_records_of_a_partition_not_assigned_are_dropped(make: Factory) -> None:
    r = await make(assign=[TP0])
    await r.pipeline.process(records("in", 1, range(2)))
    assert r.kafka.records == []
    assert r.kafka.producers_of(txn(TP1)) == []


async def test_a_quiet_partition_is_committed_by_the_ticker_within_the_interval(make: Factory) -> None:
    r = await make(commit_interval_ms=500, assign=[TP0])
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.visible(TP0) == []  # the transaction stays open for the interval
    await wait_until(lambda: r.offsets == {TP0: 2}, what="the periodic commit")
    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1)]


async def test_revoked_partitions_commit_their_open_transaction_and_close_their_producer(
    make: Factory,
) -> None:
    r = await make(commit_interval_ms=60_000)
    await r.pipeline.process([*records("in", 0, range(2)), *records("in", 1, range(3))])
    assert r.kafka.records == []
    producer = r.producer(TP0)

    await r.revoke(TP0)

    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1)]
    assert r.visible(TP1) == []
    assert r.offsets == {TP0: 2}
    assert producer.stopped
    assert r.pipeline.transactional_ids() == [txn(TP1)]


async def test_close_commits_what_is_open_and_stops_every_producer(make: Factory) -> None:
    r = await make(commit_interval_ms=60_000)
    await r.pipeline.process([*records("in", 0, range(2)), *records("in", 1, range(1))])

    await r.pipeline.close()

    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1)]
    assert r.visible(TP1) == [b(TP1, 0)]
    assert r.offsets == {TP0: 2, TP1: 1}
    assert all(p.stopped for p in r.kafka.producers)


async def test_a_record_not_due_yet_holds_the_partition_and_ends_the_transaction_before_it(
    make: Factory,
) -> None:
    retry_tp = TopicPartition("in.retry", 0)
    r = await make(gate=DelayGate(), assign=[retry_tp])
    due = str(int((time.time() + 3600) * 1000)).encode()
    r.consumer.seeks.clear()

    await r.pipeline.process(
        [
            record("in.retry", 0, 0, value=b"ready"),
            record("in.retry", 0, 1, value=b"later", headers=[(DUE_AT, due)]),
            record("in.retry", 0, 2, value=b"behind"),
        ]
    )

    assert r.kafka.values() == [b"ready"]
    assert r.offsets == {retry_tp: 1}
    assert r.consumer.seeks == [(retry_tp, 1)]
    assert r.consumer.paused == {retry_tp}


async def test_the_rebalance_listener_drives_the_pipeline(make: Factory) -> None:
    r = await make(assign=[])
    assert r.pipeline.transactional_ids() == []
    await r.assign(TP0, TP1)
    assert sorted(r.pipeline.transactional_ids()) == [txn(TP0), txn(TP1)]
    await r.revoke(TP0, TP1)
    assert r.pipeline.transactional_ids() == []
    assert all(p.stopped for p in r.kafka.producers)


async def test_partition_producers_fence_the_previous_owner_when_they_open() -> None:
    kafka = FakeKafka()
    mine = PartitionProducers(kafka.build, app_id=APP)
    theirs = PartitionProducers(kafka.build, app_id=APP)
    assert await mine.open([TP0]) == {}
    await mine[TP0].begin_transaction()
    await mine[TP0].send("out", value=b"zombie")

    assert await theirs.open([TP0]) == {}

    assert kafka.producers[0].fenced
    assert [o.value for o in kafka.aborted] == [b"zombie"]
    assert TP0 in theirs
    with pytest.raises(ProducerFenced):
        await mine[TP0].begin_transaction()
    await mine.close_all()
    await theirs.close_all()
    assert all(p.stopped for p in kafka.producers)


async def test_records_all_behind_the_next_offset_are_dropped_without_a_transaction(make: Factory) -> None:
    r = await make(assign=[TP0])
    await r.pipeline.process(records("in", 0, range(3)))
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.producer(TP0).transactions == ["committed"]
    assert r.visible(TP0) == [b(TP0, 0), b(TP0, 1), b(TP0, 2)]


async def test_close_with_a_failing_commit_leaves_nothing_visible_and_no_producer_open(make: Factory) -> None:
    r = await make(commit_interval_ms=60_000, assign=[TP0])
    await r.pipeline.process(records("in", 0, range(2)))
    r.producer(TP0).commit_errors.append(KafkaConnectionError())

    await r.pipeline.close()

    assert r.visible(TP0) == []
    assert r.offsets == {}
    assert all(p.stopped for p in r.kafka.producers)


async def test_records_of_an_aborted_transaction_are_not_skipped_when_the_rewind_fails(make: Factory) -> None:
    r = await make(assign=[TP0])
    r.producer(TP0).commit_errors.append(KafkaConnectionError())
    r.consumer.committed_errors.append(GroupAuthorizationFailedError())

    await r.pipeline.process(records("in", 0, range(2)))  # the commit fails, and so does the rewind

    assert r.visible(TP0) == []
    assert r.metric("transactions_total", result="aborted") == 1
    # The consumer's position is past the aborted records: it fetches 2 and 3 next. Nothing may be
    # committed past 0 and 1: the partition is rewound to its committed offset first.
    await r.pipeline.process(records("in", 0, range(2, 4)))
    assert r.offsets == {}
    assert r.consumer.seeks[-1] == (TP0, 0)

    await r.pipeline.process(records("in", 0, range(4)))
    assert r.visible(TP0) == [b(TP0, o) for o in range(4)]
    assert r.offsets == {TP0: 4}


async def test_a_commit_timeout_whose_producer_cannot_be_re_created_recovers_when_records_arrive(
    make: Factory,
) -> None:
    r = await make(commit_interval_ms=500, commit_timeout_ms=30, assign=[TP0])
    await r.pipeline.process(records("in", 0, range(2)))
    r.producer(TP0).commit_hangs = True
    r.kafka.start_failures[txn(TP0)] = [KafkaConnectionError()]

    # The periodic commit times out, and the new producer cannot start: the ticker goes on.
    await wait_until(lambda: r.metric("commit_failures_total") == 1, what="the commit timeout")
    await wait_until(lambda: len(r.kafka.producers_of(txn(TP0))) == 2, what="the re-creation")
    assert r.pipeline.transactional_ids() == []
    assert r.visible(TP0) == []

    # A batch fetched before that rewind is fetched again; the next records re-open the producer
    # and rewind the partition before anything is processed.
    await r.pipeline.process(records("in", 0, range(2, 4)))
    assert r.consumer.seeks[-1] == (TP0, 0)
    await r.pipeline.process(records("in", 0, range(4)))
    assert r.pipeline.transactional_ids() == [txn(TP0)]
    assert r.visible(TP0) == []
    await r.pipeline.process(records("in", 0, range(4)))
    await r.pipeline.close()
    assert r.visible(TP0) == [b(TP0, o) for o in range(4)]
    assert r.offsets == {TP0: 4}


async def test_a_batch_fetched_before_a_rewind_between_batches_is_fetched_again(make: Factory) -> None:
    """The periodic commit fails between two batches and rewinds; the next batch was fetched before
    that rewind and starts past it. Committing it would skip the records in between."""
    r = await make(commit_interval_ms=50)
    r.producer(TP0).ack_failures.add(KafkaTimeoutError(), where=value_is(b(TP0, 1)))
    await r.pipeline.process(records("in", 0, range(3)))
    # The rewind ends with the partition paused for its backoff.
    await wait_until(lambda: r.consumer.pauses == [TP0], what="the abort and rewind")
    r.consumer.seeks.clear()

    await r.pipeline.process(records("in", 0, range(3, 6)))
    await r.pipeline.close()

    assert r.offsets.get(TP0, 0) == 0, "nothing committed past the rewound records"
    assert r.visible(TP0) == []
    assert r.consumer.seeks == [(TP0, 0)], "fetched again from the rewind"
