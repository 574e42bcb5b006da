"""The seed's consumer pattern, exactly: one send_and_wait and one commit per message."""

import asyncio
import json
import os
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def main() -> None:
    bootstrap = os.environ["BENCH_BOOTSTRAP"]
    consumer = AIOKafkaConsumer(
        os.environ["BENCH_INPUT"],
        bootstrap_servers=bootstrap.split(","),
        group_id=os.environ["BENCH_GROUP"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        async for msg in consumer:
            order = json.loads(msg.value)
            processed = {
                "order_id": order["order_id"],
                "customer_id": order["customer_id"],
                "status": "processed",
                "total": order["total"],
                "processed_at": datetime.now(UTC).isoformat(),
            }
            await producer.send_and_wait(
                os.environ["BENCH_OUTPUT"], json.dumps(processed).encode(), key=msg.key
            )
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
