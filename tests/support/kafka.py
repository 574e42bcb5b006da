"""Small real-Kafka helpers for tests: topics, producing, reading everything, offsets."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code
from bench.kafka.offsets import committed_and_end, end_offsets

from kafka_delivery.errors import MissingTopicsError
from kafka_delivery.tools import bounded, closing, connect, deadline, within
from kafka_delivery.tools import reading as kafka_io
from tests.support.waiting import eventually

CALL_TIMEOUT_S = 30.0  # a cluster that stops answering fails the test in one line, not at pytest's timeout


# A cluster as the helpers take it: a bootstrap list, or the client settings of a secured one.
Cluster = str | Mapping[str, Any]


def hosts(bootstrap: str) -> list[str]:
    """aiokafka takes a string as one host: a comma-separated bootstrap list must be split."""
    return [h.strip() for h in bootstrap.split(",") if h.strip()]


def client_args(cluster: Cluster) -> dict[str, Any]:
    """aiokafka's client arguments for `cluster`."""
    return {"bootstrap_servers": hosts(cluster)} if isinstance(cluster, str) else dict(cluster)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topics(
    bootstrap: Cluster,
    names: Sequence[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
) -> None:
    admin = AIOKafkaAdminClient(**client_args(bootstrap))
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(name, partitions, replication_factor, topic_configs=dict(configs or {}))
                for name in names
            ]
        )
        errors = [(name, for_code(code).__name__) for name, code, *_ in response.topic_errors if code]
        assert not errors, f"could not create topics: {errors}"
        await eventually(
            admin.list_topics,
            until=lambda existing: set(names) <= set(existing),
            timeout=30,
            what=f"topics {names} in the metadata",
        )
    finally:
        await admin.close()


async def delete_topics(bootstrap: Cluster, names: Iterable[str]) -> None:
    admin = AIOKafkaAdminClient(**client_args(bootstrap))
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def topic_exists(bootstrap: Cluster, name: str) -> bool:
    admin = AIOKafkaAdminClient(**client_args(bootstrap))
    await admin.start()
    try:
        return name in await admin.list_topics()
    finally:
        await admin.close()


async def produce(
    bootstrap: Cluster,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
    **options: Any,
) -> None:
    """Send (key, value, headers) records with an idempotent, acks=all producer and wait for every ack."""
    producer = AIOKafkaProducer(
        **client_args(bootstrap), acks="all", enable_idempotence=True, linger_ms=5, **options
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k, headers=h) for k, v, h in records]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def produce_paced(bootstrap: Cluster, topic: str, records: Sequence[Any], *, chunk: int = 500) -> None:
    """Produce in acked chunks, a new producer each, so that input keeps arriving for a while."""
    for start in range(0, len(records), chunk):
        await produce(bootstrap, topic, records[start : start + chunk])


async def read_all(bootstrap: Cluster, topic: str, *, expected: int, timeout: float = 60.0) -> list[Any]:
    """Read a topic from the beginning until at least `expected` records arrived (read_committed),
    then on to the end offsets taken at that moment: records beyond `expected` that are already on
    the topic (duplicates) are read too. Never stops before `expected` records.

    `expected` counts records, not distinct ones: where duplicates can come before the last original
    (at-least-once after a crash), wait for everything to be written first (`wait_all_committed`)."""
    consumer = kafka_io.reading_consumer(**client_args(bootstrap))
    await connect(consumer, deadline(CALL_TIMEOUT_S))
    records: list[Any] = []
    async with closing(consumer):

        async def partitions() -> list[TopicPartition]:
            try:
                return await kafka_io.partitions_of(consumer, topic)
            except MissingTopicsError:
                return []

        # The service creates its output topics at start; reading before that finds no partitions.
        assigned = await eventually(partitions, timeout=timeout, interval=0.5, what=f"topic {topic}")
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)

        async def fetch() -> int:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for batch in batches.values():
                records.extend(batch)
            return len(records)

        await eventually(
            fetch,
            until=lambda n: n >= expected,
            timeout=timeout,
            interval=0,
            what=f"{expected} records on {topic}",
        )
        # Records beyond `expected` would be duplicates: read on to the end offsets of now. Under
        # read_committed these are the last stable offsets, past commit markers: read_to_end
        # compares positions (which move past markers) with them, not record counts.
        ends = await within(consumer.end_offsets(assigned), CALL_TIMEOUT_S, f"reading the end of {topic}")
        async for batch in kafka_io.read_to_end(consumer, ends, stall_timeout_s=CALL_TIMEOUT_S):
            records.extend(batch)
    return records


async def record_count(bootstrap: Cluster, topic: str) -> int:
    """Records on a topic, from its end offsets (exact for non-transactional topics); 0 if missing."""
    consumer = kafka_io.reading_consumer(**client_args(bootstrap))
    until = deadline(CALL_TIMEOUT_S)
    await connect(consumer, until)
    async with closing(consumer), bounded(f"reading the end offsets of {topic}", until):
        try:
            return sum((await end_offsets(consumer, topic)).values())
        except MissingTopicsError:
            return 0


async def wait_all_committed(bootstrap: Cluster, topic: str, group_id: str, *, timeout: float = 60) -> None:
    """Until the group's committed offsets on `topic` equal its end offsets."""
    await eventually(
        lambda: committed_and_end_offsets(bootstrap, topic, group_id),
        until=lambda ce: ce[0] == ce[1],
        timeout=timeout,
        what=f"committed == end offsets of {topic} for {group_id}",
    )


async def committed_and_end_offsets(
    bootstrap: Cluster, topic: str, group_id: str
) -> tuple[dict[int, int | None], dict[int, int]]:
    consumer = kafka_io.reading_consumer(**client_args(bootstrap), group_id=group_id)
    until = deadline(CALL_TIMEOUT_S)
    await connect(consumer, until)
    async with closing(consumer), bounded(f"reading the offsets of {topic}", until):
        return await committed_and_end(consumer, topic)
