"""Consumer-side reads for the commands: assign every partition of a topic, read up to its end offsets.

Each step is bounded (see `bounded`); a missing topic raises `CommandFailed`.
"""

from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from order_service.adapters.connection import client_kwargs
from order_service.cli.bounded import bounded, deadline, require_topic
from order_service.messaging.records import InputRecord
from order_service.settings import Settings


def reader(settings: Settings, group_id: str | None) -> AIOKafkaConsumer:
    """A consumer that commits only when told to, from the oldest record, of committed records only."""
    return AIOKafkaConsumer(
        **client_kwargs(settings.kafka),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


async def assign_all(
    consumer: AIOKafkaConsumer, topic: str, *, force: bool, until: float
) -> tuple[dict[TopicPartition, int], int]:
    """Assign every partition; returns the end offsets to stop at and how many records lie before them.

    `force` starts at the beginning, not at the group's committed offsets. Done by `until`.
    """
    partitions = [
        TopicPartition(topic, p) for p in sorted(await require_topic(consumer._client, topic, until))
    ]
    async with bounded(f"reading the offsets of {topic}", until):
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if force:
            await consumer.seek_to_beginning(*partitions)
        total = 0
        for tp in partitions:
            total += max(0, ends[tp] - await consumer.position(tp))
    return ends, total


async def fetch(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, list[InputRecord]]:
    """The next records of `partitions`; waits until there are some, or a position moved (past
    transaction markers, say). Unbounded: callers bound it."""
    partitions = list(partitions)
    before = [await consumer.position(tp) for tp in partitions]
    while True:
        batches: dict[TopicPartition, list[InputRecord]] = await consumer.getmany(
            *partitions, timeout_ms=1000
        )
        if batches or [await consumer.position(tp) for tp in partitions] != before:
            return batches


async def scan(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], *, timeout: float
) -> AsyncIterator[InputRecord]:
    """Every record from the consumer's positions up to `ends`; `timeout` bounds each fetch that makes
    no progress."""
    async with bounded("reading positions", deadline(timeout)):
        remaining = {tp for tp in ends if await consumer.position(tp) < ends[tp]}
    while remaining:
        topics = ", ".join(sorted({tp.topic for tp in remaining}))
        async with bounded(f"reading {topics} (no progress)", deadline(timeout)):
            batches = await fetch(consumer, remaining)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        for tp, records in batches.items():
            for record in records:
                if record.offset < ends[tp]:
                    yield record
