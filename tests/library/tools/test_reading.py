"""Reading topics to their end as the tools do, over a fake consumer with transaction markers."""

import pytest
from aiokafka import TopicPartition

from kafka_delivery.errors import MissingTopicsError
from kafka_delivery.tools.reading import assign_all, partitions_of, read_to_end, remaining
from kafka_delivery.types import InputRecord
from tests.support.fakes import FakeConsumer, record

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


def log() -> list[object]:
    # Partition 0: offset 2 is a transaction marker; partition 1 ends with one (end offset 3).
    return [
        record("t", 0, 0, value=b"a"),
        record("t", 0, 1, value=b"b"),
        record("t", 0, 3, value=b"c"),
        record("t", 1, 0, value=b"x"),
        record("t", 1, 1, value=b"y"),
    ]


async def test_every_record_up_to_the_end_is_read_in_order_per_partition() -> None:
    consumer = FakeConsumer(log=log(), ends={TP0: 4, TP1: 3})
    ends = await assign_all(consumer, "t", from_beginning=True)
    records: list[InputRecord] = [r async for batch in read_to_end(consumer, ends) for r in batch]
    assert [(r.partition, r.value) for r in records if r.partition == 0] == [(0, b"a"), (0, b"b"), (0, b"c")]
    assert [(r.partition, r.value) for r in records if r.partition == 1] == [(1, b"x"), (1, b"y")]
    assert consumer.assignment() == {TP0, TP1}


async def test_records_appended_after_the_start_are_not_read() -> None:
    consumer = FakeConsumer(log=[*log(), record("t", 1, 3, value=b"late")], ends={TP0: 4, TP1: 3})
    ends = await assign_all(consumer, "t", from_beginning=True)
    ends[TP1] = 3  # captured before "late" was appended
    batches = [batch async for batch in read_to_end(consumer, ends)]
    assert b"late" not in [r.value for batch in batches for r in batch]


async def test_nothing_is_read_from_positions_already_at_the_end() -> None:
    consumer = FakeConsumer(log=log(), ends={TP0: 4, TP1: 3})
    ends = await assign_all(consumer, "t", from_beginning=False)
    consumer.positions.update(ends)
    assert [batch async for batch in read_to_end(consumer, ends)] == []
    assert consumer.fetches == 0


async def test_remaining_counts_the_offsets_between_positions_and_ends() -> None:
    consumer = FakeConsumer(log=log(), ends={TP0: 4, TP1: 3})
    ends = await assign_all(consumer, "t", from_beginning=True)
    assert await remaining(consumer, ends) == 7
    consumer.positions[TP0] = 3
    assert await remaining(consumer, ends) == 4


async def test_a_fetch_that_makes_no_progress_times_out() -> None:
    consumer = FakeConsumer(log=log(), ends={TP0: 4, TP1: 3})
    consumer.stuck.add(TP1)
    ends = await assign_all(consumer, "t", from_beginning=True)
    with pytest.raises(TimeoutError):
        async for _ in read_to_end(consumer, ends, stall_timeout_s=0.05):
            pass


async def test_a_missing_topic_is_named() -> None:
    with pytest.raises(MissingTopicsError, match="nope"):
        await partitions_of(FakeConsumer(log=log()), "nope")
