"""Benchmark I/O: topics, the pre-produced input, and what each contender wrote."""

import asyncio
import gc
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.kafka.offsets import committed_and_end
from kafka_delivery.producing.partitioner import Murmur2Partitioner
from kafka_delivery.tools import reading as kafka_io
from order_service.cli.samples import encode, sample_order

PARTITIONS = 6
# Paced load is sent this many records at a time (12.5 ms apart at 4,000 records/s).
PACE_EVERY = 50
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
    async with admin_client(bootstrap) as admin:
        await admin.create_topics(
            [NewTopic(name, partitions, replicas, topic_configs=config) for name in names]
        )


@asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    await admin.start()
    try:
        yield admin
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


def make_orders(count: int, *, prefix: str, keys: int | None = None) -> list[tuple[bytes, bytes]]:
    """`count` ~200-byte orders as (key, value): keyed by order id, or with `keys`, by customer
    (order i belongs to customer i % keys)."""
    rng = random.Random(42)
    made = []
    for i in range(count):
        order = sample_order(i, rng, prefix=prefix)
        if keys:
            order["customer_id"] = f"cust-{i % keys:05d}"
        key = order["customer_id"] if keys else order["order_id"]
        made.append((str(key).encode(), encode(order)))
    return made


async def send_orders(
    producer: AIOKafkaProducer,
    topic: str,
    count: int,
    *,
    prefix: str,
    rate: float | None = None,
    keys: int | None = None,
) -> None:
    """`count` orders (see make_orders); at `rate` records/s when given, else as fast as acks allow."""
    orders = make_orders(count, prefix=prefix, keys=keys)
    if rate is not None:
        await _send_paced(producer, topic, orders, rate)
        return
    pending = []
    for key, value in orders:
        pending.append(await producer.send(topic, value, key=key))
        if len(pending) >= 5000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def _send_paced(
    producer: AIOKafkaProducer, topic: str, orders: list[tuple[bytes, bytes]], rate: float
) -> None:
    """`orders` at `rate`, PACE_EVERY at a time, each group sent as one batch per partition.

    The load generator shares the machine with the service under test: made in advance and sent in
    batches, the orders cost it a fraction of the CPU that a `send` per record did (~110 µs each,
    half a core at 4,000 records/s). Partitions as the default partitioner chooses them.
    """
    partitions = sorted(await producer.partitions_for(topic))
    choose = Murmur2Partitioner()
    started = time.monotonic()
    pending = []
    for first in range(0, len(orders), PACE_EVERY):
        group = orders[first : first + PACE_EVERY]
        batches: dict[int, Any] = {}
        for key, value in group:
            partition = choose(key, partitions, partitions)
            batch = batches.get(partition)
            if batch is None or batch.append(key=key, value=value, timestamp=None) is None:
                if batch is not None:
                    pending.append(await _send_batch(producer, batch, topic, partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for partition, batch in batches.items():
            pending.append(await _send_batch(producer, batch, topic, partition))
        await asyncio.sleep(max(0.0, started + (first + len(group)) / rate - time.monotonic()))
    await asyncio.gather(*pending)


async def _send_batch(producer: AIOKafkaProducer, batch: Any, topic: str, partition: int) -> Any:
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


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


async def group_joined(admin: AIOKafkaAdminClient, group: str) -> bool:
    """Whether `group` has joined: Stable, with members (their partitions assigned)."""
    [response] = await admin.describe_consumer_groups([group])
    error_code, _, state, _, _, members, *_ = response.groups[0]
    return error_code == 0 and state == "Stable" and bool(members)


async def committed_total(bootstrap: str, topic: str, group: str) -> int:
    consumer = kafka_io.reading_consumer(bootstrap_servers=bootstrap.split(","), group_id=group)
    await consumer.start()
    try:
        committed, _ = await committed_and_end(consumer, topic)
        return sum(offset or 0 for offset in committed.values())
    finally:
        await consumer.stop()
