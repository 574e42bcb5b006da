"""Committed and end offsets of a topic, for the benchmark's and the tests' checks.

The service and its commands never ask for these (verify reconciles records, not offsets), so
they live here rather than in the kafka_delivery library; the tests import them from the bench.
"""

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_delivery.tools.reading import partitions_of


async def end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic`."""
    ends = await consumer.end_offsets(await partitions_of(consumer, topic))
    return {tp.partition: offset for tp, offset in ends.items()}


async def committed_and_end(
    consumer: AIOKafkaConsumer, topic: str
) -> tuple[dict[int, int | None], dict[int, int]]:
    """The consumer's group's committed offset and the end offset of each partition of `topic`."""
    ends = await end_offsets(consumer, topic)
    committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in ends}
    return committed, ends
