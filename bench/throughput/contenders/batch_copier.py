"""The Python ceiling: getmany, send without waiting, commit after the batch is acked. No validation."""

import asyncio
import os

from aiokafka import AIOKafkaProducer

from bench.throughput.contenders.aiokafka_input import input_consumer


async def main() -> None:
    bootstrap = os.environ["BENCH_BOOTSTRAP"]
    output = os.environ["BENCH_OUTPUT"]
    consumer = input_consumer(max_poll_records=2000)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await consumer.start()
    await producer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            if not batches:
                continue
            acks = [
                await producer.send(output, record.value, key=record.key)
                for records in batches.values()
                for record in records
            ]
            await asyncio.gather(*acks)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
