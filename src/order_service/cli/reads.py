"""Consumer-side reads for the commands on the library's reading toolkit (kafka_delivery.tools), each
step bounded; a missing topic raises `MissingTopicsError`."""

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_delivery import tools
from kafka_delivery.tools import bounded, stalled
from kafka_delivery.types import InputRecord
from order_service.adapters.connection import client_kwargs
from order_service.settings import Settings

fetch = tools.fetch


def reader(settings: Settings, group_id: str | None) -> AIOKafkaConsumer:
    """A consumer that commits only when told to, from the oldest record, of committed records only."""
    return tools.reading_consumer(group_id=group_id, **client_kwargs(settings.kafka))


async def assign_all(
    consumer: AIOKafkaConsumer, topic: str, *, force: bool, until: float
) -> tuple[dict[TopicPartition, int], int]:
    """Assign every partition; returns the end offsets to stop at and how many records lie before them.

    `force` starts at the beginning, not at the group's committed offsets. Done by `until`.
    """
    async with bounded(f"reading the offsets of {topic}", until):
        ends = await tools.assign_all(consumer, topic, from_beginning=force)
        return ends, await tools.remaining(consumer, ends)


async def scan(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], *, timeout: float
) -> AsyncIterator[InputRecord]:
    """Every record from the consumer's positions up to `ends`; `timeout` bounds each fetch that makes
    no progress."""
    try:
        async for batch in tools.read_to_end(consumer, ends, stall_timeout_s=timeout):
            for record in batch:
                yield record
    except TimeoutError:
        raise await stalled(consumer, ends, timeout) from None
