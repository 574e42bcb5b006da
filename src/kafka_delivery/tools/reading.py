"""Reading topics as the tools do (the CLI, verify, the tests, the benchmark): find every partition,
assign them, read up to the end offsets captured at the start. Bounding each call: bounded_calls.py."""

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from kafka_delivery.errors import MissingTopicsError
from kafka_delivery.types import InputRecord


def reading_consumer(*, group_id: str | None = None, **client: Any) -> AIOKafkaConsumer:
    """A consumer that reads what is committed (transactions included) and commits only on request."""
    return AIOKafkaConsumer(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **client,
    )


async def partitions_of(client: AIOKafkaConsumer | AIOKafkaProducer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, from a started client; MissingTopicsError when it does not exist.

    The metadata of all topics, never of `topic` by name: asking for a topic by name creates it on
    a cluster that auto-creates topics.
    """
    # aiokafka has no public call for the metadata of a topic a consumer does not subscribe to:
    # a consumer's own client (`_client`) is the one private access, kept here.
    kafka = client.client if isinstance(client, AIOKafkaProducer) else client._client
    try:
        metadata = await kafka.fetch_all_metadata()
    except KafkaConnectionError:
        raise
    except KafkaError as exc:  # "Unable to get cluster metadata over all known brokers"
        raise KafkaConnectionError(str(exc)) from None
    ids = metadata.partitions_for_topic(topic)
    if not ids:
        raise MissingTopicsError(f"topic {topic} does not exist")
    return [TopicPartition(topic, p) for p in sorted(ids)]


async def assign_all(
    consumer: AIOKafkaConsumer, topic: str, *, from_beginning: bool
) -> dict[TopicPartition, int]:
    """Assign every partition of `topic`; returns the end offsets to read up to."""
    partitions = await partitions_of(consumer, topic)
    consumer.assign(partitions)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    if from_beginning:
        await consumer.seek_to_beginning(*partitions)
    return ends


async def remaining(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> int:
    """How many offsets lie between the consumer's positions and `ends`."""
    return sum([max(0, end - await consumer.position(tp)) for tp, end in ends.items()])


async def fetch(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, list[InputRecord]]:
    """The next records; waits until there are some or a position moved (past transaction markers)."""
    partitions = list(partitions)
    before = [await consumer.position(tp) for tp in partitions]
    while True:
        batches: dict[TopicPartition, list[InputRecord]] = await consumer.getmany(
            *partitions, timeout_ms=1000, max_records=10_000
        )
        if batches or [await consumer.position(tp) for tp in partitions] != before:
            return batches


async def read_to_end(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], *, stall_timeout_s: float = 30.0
) -> AsyncIterator[list[InputRecord]]:
    """Batches of records from the consumer's positions up to `ends`, in offset order per partition.

    TimeoutError when a fetch makes no progress for `stall_timeout_s`.
    """
    left = {tp for tp, end in ends.items() if await consumer.position(tp) < end}
    while left:
        async with asyncio.timeout(stall_timeout_s):
            batches = await fetch(consumer, left)
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
        for tp, records in batches.items():
            yield [r for r in records if r.offset < ends[tp]]
