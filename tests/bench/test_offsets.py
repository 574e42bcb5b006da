"""Committed and end offsets per partition, as the bench and the tests' checks read them."""

import pytest
from aiokafka import TopicPartition
from bench.kafka.offsets import committed_and_end, end_offsets

from kafka_delivery.errors import MissingTopicsError
from tests.support.fakes import FakeConsumer, record

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
LOG = [record("t", 0, 0), record("t", 1, 0)]


async def test_committed_and_end_offsets_per_partition() -> None:
    consumer = FakeConsumer(log=LOG, ends={TP0: 4, TP1: 3}, committed={TP0: 2})
    assert await committed_and_end(consumer, "t") == ({0: 2, 1: None}, {0: 4, 1: 3})


async def test_the_end_offsets_of_a_missing_topic_name_it() -> None:
    with pytest.raises(MissingTopicsError, match="nope"):
        await end_offsets(FakeConsumer(log=LOG, ends={TP0: 4, TP1: 3}), "nope")
