"""The producer side: an idempotent, acks=all producer owned by the delivery layer, fed in batches
(batches.py)."""

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerIdMapping,
    KafkaConnectionError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    UnknownProducerId,
)

from kafka_delivery.producing.batches import Batches
from kafka_delivery.types import OutgoingRecord

logger = logging.getLogger(__name__)
# aiokafka has no producer-epoch bump (KIP-360): after one of these its idempotent producer stays
# stuck on them (aiokafka #1017). A new producer gets a new producer id and starts clean.
STUCK = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerIdMapping)


class ProducerSink:
    """Sends records through one idempotent producer; futures resolve on broker ack (one per batch)."""

    def __init__(
        self,
        build_producer: Callable[[], AIOKafkaProducer],
        *,
        topics: Iterable[str] = (),
        linger_ms: int = 0,
    ) -> None:
        self._build = build_producer
        self._topics = tuple(topics)
        self._linger_s = linger_ms / 1000
        self._producer: AIOKafkaProducer | None = None
        self._batches: Batches | None = None
        self._stuck = False
        self._recreating: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the producer and learn the topics it writes to."""
        producer = self._build()
        try:
            await producer.start()
            batches = Batches(producer, linger_s=self._linger_s, on_failure=self._watch)
            await batches.learn(self._topics)
        except BaseException:
            await producer.stop()
            raise
        self._producer, self._batches = producer, batches

    async def stop(self) -> None:
        if self._batches is not None:
            await self._batches.close(ProducerClosed())
            self._batches = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def send(self, record: OutgoingRecord) -> "asyncio.Future[Any]":
        if self._stuck and self._recreating is None:
            self._recreating = asyncio.create_task(self._recreate())
        if self._recreating is not None:
            raise KafkaConnectionError("the producer is being re-created")
        if self._batches is None:
            raise RuntimeError("producer is not started")
        return self._batches.append(record)

    def _watch(self, error: BaseException) -> None:
        if isinstance(error, STUCK):
            self._stuck = True

    async def _recreate(self) -> None:
        """The failed records are sent again by the pipeline's rewind, through the new producer."""
        logger.warning("the idempotent producer is stuck on its sequence numbers; re-creating it")
        self._stuck = False
        try:
            await self.stop()
            await self.start()
        except Exception as exc:  # noqa: BLE001 - the next send tries again
            logger.warning("could not re-create the producer: %r", exc)
            self._stuck = True
        finally:
            self._recreating = None
