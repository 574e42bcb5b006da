"""A loop written by hand with the stock processor's effects: per order, one database transaction,
then its outcome published and its offset committed, each awaited (the seed's pattern, plus asyncpg).

It does the service's work on the same tables with the same SQL: the order model and rules
(order_work), and the reservation with its ledger row in one statement (processors/stock.py), so
that the table compares the delivery machinery, not the SQL. Its plans are generic, as the
service's are (kafka_delivery/effects/database.py): PostgreSQL's default re-plans the statement for
each order. Effects are at least once: a crash between the transaction and the offset commit
reserves the stock again.
"""

import asyncio
import os
from collections import Counter

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.throughput.contenders.aiokafka_input import input_consumer
from order_service.domain.decoding import decode_order
from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy, process_order
from order_service.processors.stock import GIVE_BACK, LEDGER, RESERVE

POLICY = OrderPolicy()


async def reserve(
    conn: "asyncpg.Connection", order: OrderCreated, at: tuple[str, int, int]
) -> OrderProcessed:
    """The rules' outcome; an accepted order's stock reserved, all or nothing; its ledger row."""
    decided = process_order(order, POLICY)
    if decided.status == "rejected":
        await conn.execute(LEDGER, decided.order_id, "rejected", *at)
        return decided
    wanted: Counter[str] = Counter()
    for item in order.items or ():
        wanted[item.sku] += item.quantity
    skus, quantities = list(wanted), list(wanted.values())
    status, reserved = await conn.fetchrow(RESERVE, skus, quantities, order.order_id, *at)
    if status == "processed":
        return decided
    if reserved:
        await conn.execute(GIVE_BACK, skus, quantities, reserved)
    return decided.model_copy(update={"status": "rejected", "reason": "not enough stock"})


async def main() -> None:
    consumer = input_consumer()
    producer = AIOKafkaProducer(
        bootstrap_servers=os.environ["BENCH_BOOTSTRAP"].split(","), acks="all", enable_idempotence=True
    )
    conn = await asyncpg.connect(
        os.environ["BENCH_DATABASE_URL"], server_settings={"plan_cache_mode": "force_generic_plan"}
    )
    await consumer.start()
    await producer.start()
    try:
        async for msg in consumer:
            order = decode_order(msg.value or b"")
            async with conn.transaction():
                processed = await reserve(conn, order, (msg.topic, msg.partition, msg.offset))
            value = processed.model_dump_json().encode()
            await producer.send_and_wait(os.environ["BENCH_OUTPUT"], value, key=processed.order_id.encode())
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
