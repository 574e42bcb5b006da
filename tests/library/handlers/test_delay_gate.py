"""The delay gate of the retry topic: a record that is not due yet holds its partition."""

import asyncio
import time
from typing import Any

from aiokafka import TopicPartition

from kafka_delivery.handlers.retry import DelayGate, due_in_s
from kafka_delivery.headers import RETRY_DUE_AT
from tests.support.fakes import FakeConsumer, record, wait_until

RETRY = TopicPartition("in.retry", 2)


def due_in(offset: int, seconds: float) -> Any:
    due = int((time.time() + seconds) * 1000)
    return record(RETRY.topic, RETRY.partition, offset, headers=[(RETRY_DUE_AT, str(due).encode())])


def test_records_without_a_due_time_or_past_it_pass() -> None:
    batch = [record(RETRY.topic, RETRY.partition, 0), due_in(1, -60)]
    assert DelayGate().split(batch) == (batch, None)
    assert due_in_s(batch[0]) == 0.0
    assert due_in_s(batch[1]) == 0.0


def test_the_batch_stops_at_the_first_record_not_due_yet() -> None:
    batch = [due_in(0, -1), due_in(1, 30), due_in(2, -1)]
    ready, held = DelayGate().split(batch)
    assert [r.offset for r in ready] == [0]
    # Later records wait behind it, even those already due: the partition keeps its order.
    assert held is batch[1]
    assert 20 < due_in_s(held) <= 30


async def test_holding_a_record_seeks_back_to_it_pauses_and_resumes_when_due() -> None:
    consumer = FakeConsumer([RETRY])
    held = due_in(5, 0.03)

    DelayGate().hold(consumer, held)

    assert consumer.seeks == [(RETRY, 5)]
    assert consumer.paused == {RETRY}
    await wait_until(lambda: consumer.paused == set(), what="the resume")
    assert consumer.resumes == [RETRY]
    due_s = int(dict(held.headers)[RETRY_DUE_AT]) / 1000
    assert consumer.resumed_at[RETRY] >= due_s - 0.002  # not before the record is due


async def test_a_partition_revoked_while_held_is_not_resumed() -> None:
    consumer = FakeConsumer([RETRY])
    DelayGate().hold(consumer, due_in(5, 0.01))
    consumer.assigned.clear()
    await asyncio.sleep(0.05)
    assert consumer.resumes == []
