"""The path every other test stands on: a real broker, keyed producing, group consuming, manual commits."""

from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.support.kafka import committed_and_end_offsets, create_topics, produce, read_all, unique
from tests.support.orders import Record
from tests.support.waiting import eventually

RECORDS = 1000


async def test_keyed_records_keep_partition_order_and_commits_reach_end_offsets(kafka: str) -> None:
    topic, group = unique("path"), unique("path-group")
    await create_topics(kafka, [topic], partitions=3)
    sent: list[Record] = [(f"key-{i % 50}".encode(), f"{i}".encode(), []) for i in range(RECORDS)]
    await produce(kafka, topic, sent)

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    received: dict[int, list[tuple[int, bytes, int]]] = defaultdict(list)
    try:

        async def consume_and_commit() -> int:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, batch in batches.items():
                received[tp.partition].extend((r.offset, r.key, int(r.value)) for r in batch)
                await consumer.commit({TopicPartition(topic, tp.partition): batch[-1].offset + 1})
            return sum(len(v) for v in received.values())

        await eventually(consume_and_commit, until=lambda n: n >= RECORDS, interval=0, what="all records")
    finally:
        await consumer.stop()

    assert sum(len(v) for v in received.values()) == RECORDS
    assert len(received) == 3, "keys spread over all three partitions"
    for records in received.values():
        offsets = [offset for offset, _, _ in records]
        assert offsets == sorted(offsets) == list(range(len(offsets)))
        per_key: dict[bytes, list[int]] = defaultdict(list)
        for _, key, value in records:
            per_key[key].append(value)
        assert all(values == sorted(values) for values in per_key.values()), "per-key send order kept"

    committed, ends = await committed_and_end_offsets(kafka, topic, group)
    assert committed == ends
    assert sum(ends.values()) == RECORDS


async def test_read_all_reads_duplicates_beyond_expected_and_stops_at_committed_end(kafka: str) -> None:
    """read_all never stops before `expected`, reads what is on the topic beyond it (a duplicate
    check depends on that), and under read_committed ends at the last stable offsets: past commit
    markers and aborted records, without waiting for a fetch to come back empty."""
    topic = unique("read-all")
    await create_topics(kafka, [topic], partitions=2)
    await produce(kafka, topic, [(f"k-{i}".encode(), f"{i}".encode(), []) for i in range(10)])

    records = await read_all(kafka, topic, expected=7)
    assert len(records) == 10, "the 3 records beyond `expected` are read too"

    producer = AIOKafkaProducer(bootstrap_servers=kafka, transactional_id=unique("read-all-txn"))
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(10, 15):
                await producer.send(topic, key=f"k-{i}".encode(), value=f"{i}".encode())
        await producer.begin_transaction()
        for i in range(15, 20):
            await producer.send(topic, key=f"k-{i}".encode(), value=f"{i}".encode())
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, key=b"k-20", value=b"20")
    finally:
        await producer.stop()

    records = await read_all(kafka, topic, expected=11)
    assert sorted(int(r.value) for r in records) == [*range(15), 20], "committed only, all of them"
