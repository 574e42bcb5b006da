"""The seed's consumer pattern, exactly: one send_and_wait and one commit per message."""

import asyncio
import os

from aiokafka import AIOKafkaProducer

from bench.throughput.contenders.aiokafka_input import input_consumer
from bench.throughput.contenders.json_work import outcome, simulated_call


async def main() -> None:
    bootstrap = os.environ["BENCH_BOOTSTRAP"]
    consumer = input_consumer()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        async for msg in consumer:
            await simulated_call()
            key, value = outcome(msg.value)
            await producer.send_and_wait(os.environ["BENCH_OUTPUT"], value, key=key)
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
