"""Bounded Kafka calls (kafka_delivery.tools.bounded_calls): the one error a tool shows, and its cause."""

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError

from kafka_delivery.errors import CannotConnect, KafkaUnreachable
from kafka_delivery.tools import bounded, deadline, stalled, within
from tests.support.fakes import FakeConsumer, record


async def test_a_call_that_does_not_answer_in_time_says_what_was_being_done() -> None:
    with pytest.raises(KafkaUnreachable, match=r"^no answer while fetching metadata"):
        async with bounded("fetching metadata", deadline(0.01)):
            await asyncio.sleep(1)


async def test_a_broker_that_cannot_be_connected_to_is_a_cannot_connect() -> None:
    with pytest.raises(CannotConnect):
        async with bounded("connecting", deadline(1)):
            raise KafkaConnectionError("refused")


async def test_other_kafka_errors_pass() -> None:
    with pytest.raises(UnknownTopicOrPartitionError):
        await within(_raise(UnknownTopicOrPartitionError()), 1)


async def test_reading_that_stalled_names_the_partitions_behind() -> None:
    consumer = FakeConsumer([TopicPartition("t", 0), TopicPartition("t", 1)], log=[record("t", 0, 0)])
    ends = {TopicPartition("t", 0): 1, TopicPartition("t", 1): 0}

    error = await stalled(consumer, ends, 2.0)

    assert str(error).startswith("no progress reading t/0 for 2s")


async def _raise(error: Exception) -> None:
    raise error
