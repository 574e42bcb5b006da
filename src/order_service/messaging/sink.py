"""The producer side: an idempotent, acks=all producer owned by the delivery layer."""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidProducerIdMapping, OutOfOrderSequenceNumber, UnknownProducerId

from order_service.messaging.records import OutgoingRecord

logger = logging.getLogger(__name__)
# aiokafka has no producer-epoch bump (KIP-360): after one of these its idempotent producer stays
# stuck on them (aiokafka #1017). A new producer gets a new producer id and starts clean.
STUCK = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerIdMapping)


class ProducerSink:
    """Sends records through one idempotent producer; futures resolve on broker ack."""

    def __init__(self, build_producer: Callable[[], AIOKafkaProducer]) -> None:
        self._build = build_producer
        self._producer: AIOKafkaProducer | None = None
        self._stuck = False

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
        if self._stuck:
            await self._recreate()
        future: asyncio.Future[Any] = await self._producer.send(
            record.topic, value=record.value, key=record.key, headers=record.headers
        )
        future.add_done_callback(self._watch)
        return future

    def _watch(self, ack: "asyncio.Future[Any]") -> None:
        if not ack.cancelled() and isinstance(ack.exception(), STUCK):
            self._stuck = True

    async def _recreate(self) -> None:
        """The failed records are sent again by the pipeline's rewind, through the new producer."""
        logger.warning("the idempotent producer is stuck on its sequence numbers; re-creating it")
        self._stuck = False
        old, self._producer = self._producer, None
        if old is not None:
            await old.stop()
        await self.start()
