"""pyrallel-consumer 1.0 in key order, as its README shows: ordering `key_hash`, the asyncio engine.

Runs in its own Python 3.12 venv (bench/throughput/io_bound/pyrallel_venv.py), without order_service:
the seed's JSON work after the simulated call, the outcome published keyed by order id and
acknowledged before the library commits the record.
"""

import asyncio
import os
import signal
import threading
from typing import Any

from confluent_kafka import KafkaException, Producer  # type: ignore[import-not-found]
from pyrallel_consumer.config import KafkaConfig  # type: ignore[import-not-found]
from pyrallel_consumer.consumer import PyrallelConsumer  # type: ignore[import-not-found]
from pyrallel_consumer.dto import ExecutionMode, OrderingMode, WorkItem  # type: ignore[import-not-found]

from bench.throughput.contenders.json_work import outcome, simulated_call


class Publisher:
    """confluent-kafka's producer; each send returns once the broker has acknowledged it."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5}
        )
        self._loop = asyncio.get_running_loop()
        self._open = True
        self._poller = threading.Thread(target=self._serve_callbacks, daemon=True)
        self._poller.start()

    def _serve_callbacks(self) -> None:
        while self._open:
            self._producer.poll(0.05)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        acked: asyncio.Future[None] = self._loop.create_future()

        def settle(error: Any) -> None:
            if acked.done():
                return
            if error:
                acked.set_exception(KafkaException(error))
            else:
                acked.set_result(None)

        self._producer.produce(
            topic, value, key, on_delivery=lambda error, _: self._loop.call_soon_threadsafe(settle, error)
        )
        await acked

    def close(self) -> None:
        self._open = False
        self._poller.join()
        self._producer.flush(10)


async def main() -> None:
    env = os.environ
    publisher = Publisher(env["BENCH_BOOTSTRAP"])

    async def work(item: WorkItem) -> None:
        await simulated_call()
        key, value = outcome(item.payload)
        await publisher.send(env["BENCH_OUTPUT"], key, value)

    config = KafkaConfig(BOOTSTRAP_SERVERS=env["BENCH_BOOTSTRAP"], CONSUMER_GROUP=env["BENCH_GROUP"])
    config.parallel_consumer.ordering_mode = OrderingMode.KEY_HASH
    config.parallel_consumer.execution.mode = ExecutionMode.ASYNC
    consumer = PyrallelConsumer(config=config, worker=work, topic=env["BENCH_INPUT"])
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await consumer.start()
    try:
        # Until SIGTERM, or until the library's poll loop ends on a fatal error.
        waits = [asyncio.create_task(stopped.wait()), asyncio.create_task(consumer.wait_closed())]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        await consumer.stop()
        publisher.close()


if __name__ == "__main__":
    asyncio.run(main())
