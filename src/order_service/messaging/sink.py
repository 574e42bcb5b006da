"""The producer side: an idempotent, acks=all producer owned by the delivery layer."""

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from order_service.messaging.records import OutgoingRecord


class ProducerSink:
    """Sends records through one idempotent producer; futures resolve on broker ack."""

    def __init__(self, build_producer: Callable[[], AIOKafkaProducer]) -> None:
        self._build = build_producer
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = self._build()
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, record: OutgoingRecord) -> "asyncio.Future[Any]":
        if self._producer is None:
            raise RuntimeError("producer is not started")
        future: asyncio.Future[Any] = await self._producer.send(
            record.topic, value=record.value, key=record.key, headers=record.headers
        )
        return future
