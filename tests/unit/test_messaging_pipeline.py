"""At-least-once BatchPipeline over in-memory fakes: outputs, commits, rewinds, blocked partitions."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
from prometheus_client import CollectorRegistry

from order_service.messaging.metrics import PipelineMetrics
from order_service.messaging.pipeline import BatchPipeline
from order_service.messaging.pipeline_base import PipelineParts
from order_service.messaging.records import OutgoingRecord, RecordHandler
from order_service.messaging.retry import DUE_AT, DelayGate
from tests.support.fakes import FakeConsumer, FakeSink, record, records, sample, value_is, wait_until

TP0 = TopicPartition("in", 0)
TP1 = TopicPartition("in", 1)


async def echo(rec: Any) -> Sequence[OutgoingRecord]:
    """One output per input, on `out`, keyed like the input, its value naming the input."""
    return [OutgoingRecord(topic="out", key=rec.key, value=rec.value, headers=[("n", b"1")])]


@dataclass
class Rig:
    pipeline: BatchPipeline
    sink: FakeSink
    consumer: FakeConsumer
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float | None:
        return sample(self.registry, f"t_{name}", **labels)

    def blocked(self, tp: TopicPartition, reason: str) -> float | None:
        return self.metric("blocked_partitions", topic=tp.topic, partition=str(tp.partition), reason=reason)


def rig(
    handler: RecordHandler = echo,
    *,
    sink: FakeSink | None = None,
    gate: DelayGate | None = None,
    backoff_ms: int = 20,
    assigned: Sequence[TopicPartition] = (TP0, TP1),
) -> Rig:
    registry = CollectorRegistry()
    sink = sink or FakeSink()
    parts = PipelineParts(
        handler,
        PipelineMetrics(registry, "t"),
        backoff_ms=backoff_ms,
        max_backoff_ms=4 * backoff_ms,
        gate=gate,
    )
    pipeline = BatchPipeline(parts, sink)
    consumer = FakeConsumer(assigned)
    pipeline.consumer = lambda: consumer
    return Rig(pipeline, sink, consumer, registry)


def out_values(sent: Sequence[OutgoingRecord], tp: TopicPartition) -> list[bytes | None]:
    prefix = f"{tp.topic}-{tp.partition}@".encode()
    return [r.value for r in sent if r.value is not None and r.value.startswith(prefix)]


def b(tp: TopicPartition, offset: int) -> bytes:
    return f"{tp.topic}-{tp.partition}@{offset}".encode()


async def test_outputs_keep_input_order_and_each_partition_commits_past_its_last_record() -> None:
    r = rig(sink=FakeSink(ack_order="reversed"))  # acks arriving in any order change nothing
    p0, p1 = records("in", 0, range(3)), records("in", 1, range(5, 7))
    batch = [p0[0], p1[0], p0[1], p1[1], p0[2]]

    await r.pipeline.process(batch)

    assert out_values(r.sink.sent, TP0) == [b(TP0, 0), b(TP0, 1), b(TP0, 2)]
    assert out_values(r.sink.sent, TP1) == [b(TP1, 5), b(TP1, 6)]
    assert {(o.topic, o.key) for o in r.sink.sent} == {("out", b"k0"), ("out", b"k1")}
    assert r.consumer.commits == [{TP0: 3, TP1: 7}]
    assert r.pipeline.committed == {TP0: 3, TP1: 7}
    assert r.consumer.seeks == []
    assert r.consumer.pauses == []
    assert r.metric("batch_size_records_sum") == 5
    assert r.metric("batch_processing_seconds_count") == 1
    assert r.metric("publish_failures_total") == 0


async def test_a_record_with_several_outputs_commits_only_when_all_are_acked() -> None:
    async def fan_out(rec: Any) -> Sequence[OutgoingRecord]:
        return [OutgoingRecord("a", rec.value, rec.key), OutgoingRecord("b", rec.value, rec.key)]

    r = rig(fan_out)
    r.sink.ack_failures.add(KafkaTimeoutError(), where=lambda o: o.topic == "b" and o.value == b(TP0, 1))

    await r.pipeline.process(records("in", 0, range(3)))

    assert r.consumer.commits == [{TP0: 1}]
    assert r.consumer.seeks == [(TP0, 1)]


async def test_a_failed_ack_rewinds_and_pauses_only_its_partition_then_it_is_retried() -> None:
    r = rig(backoff_ms=20)
    r.sink.ack_failures.add(NotLeaderForPartitionError(), where=value_is(b(TP0, 2)), times=1)

    await r.pipeline.process([*records("in", 0, range(5)), *records("in", 1, range(2))])

    # TP0 commits up to the record whose output was not acked; TP1 commits all of its records.
    assert r.consumer.commits == [{TP0: 2, TP1: 2}]
    assert r.consumer.seeks == [(TP0, 2)]
    assert r.consumer.paused == {TP0}
    assert r.metric("publish_failures_total") == 1
    assert r.pipeline.backoff.blocked == {}  # a transient failure does not block

    # The backoff is at most its base (20 ms) after a first failure: the partition resumes.
    await wait_until(lambda: r.consumer.paused == set(), what="the resume")
    assert r.consumer.resumes == [TP0]

    await r.pipeline.process(records("in", 0, range(2, 5)))
    assert r.consumer.commits[-1] == {TP0: 5}
    acked = [o.value for o in r.sink.acked]
    assert acked.count(b(TP0, 2)) == 1
    assert acked.count(b(TP0, 1)) == 1  # acked records before the failure are not sent again


@pytest.mark.parametrize("where", ["handler", "sink"])
async def test_a_record_that_cannot_be_handed_over_stops_its_partition_there(where: str) -> None:
    async def handler(rec: Any) -> Sequence[OutgoingRecord]:
        if where == "handler" and rec.value == b(TP0, 1):
            raise ConnectionError("database away")
        return await echo(rec)

    r = rig(handler)
    if where == "sink":
        r.sink.send_failures.add(KafkaConnectionError(), where=value_is(b(TP0, 1)))

    await r.pipeline.process([*records("in", 0, range(4)), *records("in", 1, range(3))])

    # Nothing after the failed record of TP0 is sent: outputs stay in input order when it is retried.
    assert out_values(r.sink.sent, TP0) == [b(TP0, 0)]
    assert len(out_values(r.sink.sent, TP1)) == 3
    assert r.consumer.commits == [{TP0: 1, TP1: 3}]
    assert r.consumer.seeks == [(TP0, 1)]
    assert r.consumer.pauses == [TP0]
    assert r.metric("publish_failures_total") == 1


async def test_a_cancelled_ack_counts_as_not_acked() -> None:
    r = rig()
    r.sink.ack_failures.add(asyncio.CancelledError(), where=value_is(b(TP0, 0)))
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.consumer.commits == []
    assert r.consumer.seeks == [(TP0, 0)]
    assert r.metric("publish_failures_total") == 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (MessageSizeTooLargeError(), "record_too_large"),
        (TopicAuthorizationFailedError(), "not_authorized"),
    ],
)
async def test_a_refused_publish_blocks_the_partition_until_a_commit_moves_past_it(
    error: Exception, reason: str
) -> None:
    r = rig(backoff_ms=1)
    r.sink.ack_failures.add(error, where=value_is(b(TP0, 1)))

    await r.pipeline.process([*records("in", 0, range(3)), *records("in", 1, range(2))])

    assert r.consumer.commits == [{TP0: 1, TP1: 2}]
    assert r.blocked(TP0, reason) == 1
    assert r.blocked(TP1, reason) is None
    assert r.metric("publish_refusals_total", reason=reason) == 1
    assert {tp: (b.offset, b.reason) for tp, b in r.pipeline.backoff.blocked.items()} == {TP0: (1, reason)}

    # Refused again at the same record: counted, still one blocked partition.
    await r.pipeline.process(records("in", 0, range(1, 3)))
    assert r.metric("publish_refusals_total", reason=reason) == 2
    assert r.blocked(TP0, reason) == 1
    assert r.consumer.commits == [{TP0: 1, TP1: 2}]  # nothing new to commit for TP0

    # The cause is fixed (topic enlarged, ACL granted): the record lands and the block clears.
    r.sink.ack_failures.clear()
    await r.pipeline.process(records("in", 0, range(1, 3)))
    assert r.consumer.commits[-1] == {TP0: 3}
    assert r.blocked(TP0, reason) is None
    assert r.pipeline.backoff.blocked == {}
    assert r.metric("publish_refusals_total", reason=reason) == 2


async def test_a_refusal_further_on_moves_the_block_to_the_new_offset() -> None:
    r = rig(backoff_ms=1)
    r.sink.ack_failures.add(MessageSizeTooLargeError(), where=value_is(b(TP0, 1)), times=1)
    r.sink.ack_failures.add(TopicAuthorizationFailedError(), where=value_is(b(TP0, 2)))
    await r.pipeline.process(records("in", 0, range(3)))
    assert r.blocked(TP0, "record_too_large") == 1

    await r.pipeline.process(records("in", 0, range(1, 3)))

    assert r.consumer.commits[-1] == {TP0: 2}
    assert r.blocked(TP0, "record_too_large") is None
    assert r.blocked(TP0, "not_authorized") == 1
    assert r.pipeline.backoff.blocked[TP0].offset == 2


async def test_a_failed_commit_rewinds_to_the_committed_offsets_and_commits_next_time() -> None:
    r = rig(backoff_ms=1)
    r.consumer.committed_offsets.update({TP0: 0, TP1: 0})
    r.consumer.commit_errors.append(CommitFailedError("rebalanced"))

    await r.pipeline.process([*records("in", 0, range(3)), *records("in", 1, range(2))])

    assert r.metric("commit_failures_total") == 1
    assert r.pipeline.committed == {}
    assert sorted(r.consumer.seeks) == [(TP0, 0), (TP1, 0)]
    assert r.consumer.committed_offsets == {TP0: 0, TP1: 0}

    await r.pipeline.process([*records("in", 0, range(3)), *records("in", 1, range(2))])
    assert r.consumer.commits == [{TP0: 3, TP1: 2}]
    assert r.pipeline.committed == {TP0: 3, TP1: 2}


async def test_a_failed_rewind_after_a_failed_commit_is_survived() -> None:
    r = rig(backoff_ms=1)
    r.consumer.commit_errors.append(CommitFailedError("rebalanced"))
    r.consumer.rewind_errors.append(KafkaConnectionError())

    await r.pipeline.process(records("in", 0, range(2)))

    assert r.metric("commit_failures_total") == 1
    assert r.consumer.seeks == []
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.consumer.commits == [{TP0: 2}]


async def test_a_failed_commit_of_partitions_no_longer_assigned_does_not_seek() -> None:
    r = rig(backoff_ms=1)
    r.consumer.commit_errors.append(CommitFailedError("rebalanced"))
    r.consumer.assigned.clear()
    await r.pipeline.process(records("in", 0, range(2)))
    assert r.metric("commit_failures_total") == 1
    assert r.consumer.seeks == []


async def test_a_failure_in_a_partition_revoked_meanwhile_is_not_rewound() -> None:
    r = rig()
    r.sink.ack_failures.add(KafkaTimeoutError(), where=value_is(b(TP0, 0)))
    r.consumer.assigned.discard(TP0)  # revoked while the batch was in flight

    await r.pipeline.process(records("in", 0, range(2)))

    assert r.consumer.seeks == []
    assert r.consumer.pauses == []
    assert r.consumer.commits == []


async def test_without_a_consumer_outputs_are_sent_and_nothing_is_committed() -> None:
    r = rig()
    r.pipeline.consumer = lambda: None
    await r.pipeline.process(records("in", 0, range(2)))
    assert out_values(r.sink.sent, TP0) == [b(TP0, 0), b(TP0, 1)]
    assert r.consumer.commits == []
    assert r.pipeline.transactional_ids() == []
    await r.pipeline.close()


async def test_a_record_not_due_yet_holds_its_partition_and_is_not_committed() -> None:
    retry_tp = TopicPartition("in.retry", 0)
    r = rig(gate=DelayGate(), assigned=[retry_tp])
    due_later = str(int((time.time() + 3600) * 1000)).encode()
    batch = [
        record("in.retry", 0, 0, value=b"ready"),
        record("in.retry", 0, 1, value=b"later", headers=[(DUE_AT, due_later)]),
        record("in.retry", 0, 2, value=b"behind"),
    ]

    await r.pipeline.process(batch)

    assert r.sink.values() == [b"ready"]
    assert r.consumer.commits == [{retry_tp: 1}]
    assert r.consumer.seeks == [(retry_tp, 1)]
    assert r.consumer.paused == {retry_tp}


async def test_a_revocation_waits_for_the_batch_in_flight_and_forgets_the_partition() -> None:
    release = asyncio.Event()

    async def slow(rec: Any) -> Sequence[OutgoingRecord]:
        await release.wait()
        return await echo(rec)

    r = rig(slow, backoff_ms=1)
    r.sink.ack_failures.add(MessageSizeTooLargeError(), where=value_is(b(TP0, 1)))
    listener = r.pipeline.rebalance_listener()

    batch = asyncio.create_task(r.pipeline.process(records("in", 0, range(3))))
    await asyncio.sleep(0)
    revoke = asyncio.create_task(listener.on_partitions_revoked({TP0}))
    await asyncio.sleep(0.01)
    assert not revoke.done()  # the in-flight batch commits under the old generation first

    release.set()
    await asyncio.gather(batch, revoke)
    assert r.consumer.commits == [{TP0: 1}]
    assert r.metric("publish_refusals_total", reason="record_too_large") == 1
    # The partition's next owner starts afresh: no blocked partition left here.
    assert r.blocked(TP0, "record_too_large") is None
    assert r.pipeline.backoff.blocked == {}
    await listener.on_partitions_assigned({TP0})
