"""Benchmark I/O: topics, the pre-produced input, and what each contender wrote."""

import asyncio
import gc
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from order_service.cli.samples import encode, sample_order
from order_service.messaging import kafka_io

PARTITIONS = 6
# How long held_orders may keep its transaction open (the broker's default maximum: 15 minutes).
HELD_TIMEOUT_MS = 900_000
# Every contender's output carries the order id in its JSON value; keys differ (FastStream's
# plain publisher sends none), so records are matched by the value.
ORDER_ID = re.compile(rb'"order_id":\s*"([^"]+)"')


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    *,
    log_append_time: bool = False,
    partitions: int = PARTITIONS,
    replicas: int = 1,
) -> None:
    """Topics of 6 partitions; input topics stamp records on arrival at the broker (LogAppendTime)."""
    config = {"message.timestamp.type": "LogAppendTime"} if log_append_time else {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, partitions, replicas, topic_configs=config) for name in names]
        )
    finally:
        await admin.close()


def order_producer(bootstrap: str, **settings: object) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        **settings,
    )


async def send_orders(
    producer: AIOKafkaProducer,
    topic: str,
    count: int,
    *,
    prefix: str,
    rate: float | None = None,
    keys: int | None = None,
) -> None:
    """`count` ~200-byte orders; at `rate` records/s when given, else as fast as acks allow.

    Keyed by order id, or with `keys`, by customer: order i belongs to customer i % keys.
    """
    rng = random.Random(42)
    started = time.monotonic()
    pending = []
    for i in range(count):
        order = sample_order(i, rng, prefix=prefix)
        if keys:
            order["customer_id"] = f"cust-{i % keys:05d}"
        key = order["customer_id"] if keys else order["order_id"]
        pending.append(await producer.send(topic, encode(order), key=str(key).encode()))
        if rate is not None and i % 50 == 49:
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        if len(pending) >= 5000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def produce_orders(
    bootstrap: str, topic: str, count: int, *, prefix: str, rate: float | None = None, keys: int | None = None
) -> None:
    """`count` orders on `topic` (see send_orders)."""
    producer = order_producer(bootstrap)
    await producer.start()
    # Paced load must arrive at its rate: a full collection in this process stalled it for ~100 ms
    # every 20,000 records, and the service then met a burst of twice the rate (measured at
    # 4,000 records/s). A paced run is short (the half-load run sends 20 s of records), so the
    # garbage it leaves meanwhile is small.
    paced = rate is not None and gc.isenabled()
    if paced:
        gc.disable()
    try:
        await send_orders(producer, topic, count, prefix=prefix, rate=rate, keys=keys)
    finally:
        if paced:
            gc.enable()
        await producer.stop()


@asynccontextmanager
async def held_orders(
    bootstrap: str, topic: str, count: int, *, prefix: str
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """`count` orders in one open transaction, and the function that commits it.

    Until then a `read_committed` consumer, as order-service is, sees none of them.
    """
    producer = order_producer(
        bootstrap, transactional_id=f"bench.held.{topic}", transaction_timeout_ms=HELD_TIMEOUT_MS
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        await send_orders(producer, topic, count, prefix=prefix)
        yield producer.commit_transaction
    finally:
        await producer.stop()


async def timestamps(bootstrap: str, topic: str) -> dict[bytes, int]:
    """Record timestamp (ms) per order id, reading the whole topic as read_committed."""
    consumer = kafka_io.reading_consumer(bootstrap_servers=bootstrap.split(","))
    await consumer.start()
    found: dict[bytes, int] = {}
    try:
        ends = await kafka_io.assign_all(consumer, topic, from_beginning=True)
        async for records in kafka_io.read_to_end(consumer, ends):
            for record in records:
                if record.value and (match := ORDER_ID.search(record.value)):
                    found.setdefault(match.group(1), record.timestamp)
    finally:
        await consumer.stop()
    return found


async def committed_total(bootstrap: str, topic: str, group: str) -> int:
    consumer = kafka_io.reading_consumer(bootstrap_servers=bootstrap.split(","), group_id=group)
    await consumer.start()
    try:
        committed, _ = await kafka_io.committed_and_end(consumer, topic)
        return sum(offset or 0 for offset in committed.values())
    finally:
        await consumer.stop()
