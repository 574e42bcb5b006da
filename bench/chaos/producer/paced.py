"""The orders of a chaos run and the producer that sends them at an even pace through broker faults.

It runs in the producer's own process (bench/chaos/producer/): at thousands of records a second
it would otherwise starve the harness's monitor on a busy machine."""

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from bench.chaos.kafka.clients import CALL_TIMEOUT_S, TRANSIENT, hosts
from bench.chaos.kafka.metadata import PARTITIONS
from kafka_delivery.tools import close, within
from order_service.cli.samples import encode, malformed_corpus, sample_order

MALFORMED_EVERY = 100  # 1 %

Record = tuple[bytes, bytes | None]  # key, value


def orders(count: int, *, prefix: str, seed: int = 11) -> list[Record]:
    """`count` keyed orders; every 100th (1 %) is one of the malformed corpus, in turn."""
    rng = random.Random(seed)
    corpus = malformed_corpus()
    records: list[Record] = []
    for i in range(count):
        if i % MALFORMED_EVERY == MALFORMED_EVERY // 2:
            bad = corpus[(i // MALFORMED_EVERY) % len(corpus)]
            records.append((f"{prefix}-bad-{i:08d}".encode(), bad.value))
        else:
            order = sample_order(i, rng, prefix=prefix)
            records.append((str(order["order_id"]).encode(), encode(order)))
    return records


@dataclass
class Production:
    """What the producer did: records acknowledged, sends that failed and were sent again."""

    total: int
    acked: int = 0
    resent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    started_at: float | None = None
    finished_at: float | None = None
    producers_created: int = 0

    @property
    def done(self) -> bool:
        return self.acked >= self.total


@dataclass(frozen=True, slots=True)
class _Pending:
    index: int
    future: "asyncio.Future[Any]"
    generation: int


class PacedProducer:
    """Sends `records` at an even pace over `seconds`, one sending task per partition, so that a
    partition whose leader is down holds only itself. A send that fails (timeout, not enough
    replicas, ...) is sent again until it is acknowledged: an input may then be written twice,
    which only adds an input; nothing the run counts on is lost. Idempotent, acks=all.
    """

    def __init__(self, bootstrap: str, topic: str, records: Sequence[Record], *, seconds: float) -> None:
        self.bootstrap, self.topic, self.records = bootstrap, topic, records
        self.rate = len(records) / max(seconds, 0.001)
        self.production = Production(total=len(records))
        self._producer: AIOKafkaProducer | None = None
        self._generation = 0
        self._dropped: set[int] = set()
        self._lock = asyncio.Lock()
        partitioner = DefaultPartitioner()
        everything = list(range(PARTITIONS))
        self._by_partition: dict[int, list[int]] = defaultdict(list)
        for i, (key, _) in enumerate(records):
            self._by_partition[partitioner(key, everything, everything)].append(i)

    async def run(self, *, timeout: float) -> Production:
        """Until every record is acknowledged; TimeoutError after `timeout` seconds."""
        self.production.started_at = start = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(
                    *(self._partition(p, indexes, start) for p, indexes in self._by_partition.items())
                )
        finally:
            self.production.finished_at = time.monotonic()
            producer, self._producer = self._producer, None
            if producer is not None:
                await close(producer, CALL_TIMEOUT_S)
        return self.production

    async def _partition(self, partition: int, indexes: list[int], start: float) -> None:
        pending: list[_Pending] = []
        for i in indexes:
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(await self._send(i, partition))
            if len(pending) >= 200:
                pending = await self._settle(pending, partition, wait=False)
        while pending:
            pending = await self._settle(pending, partition, wait=True)

    async def _settle(self, pending: list["_Pending"], partition: int, *, wait: bool) -> list["_Pending"]:
        if wait:
            await asyncio.wait([p.future for p in pending], timeout=5)
        still: list[_Pending] = []
        for entry in pending:
            future = entry.future
            if not future.done():
                if entry.generation in self._dropped:  # its producer is gone: it never completes
                    self.production.errors["dropped with its producer"] += 1
                    self.production.resent += 1
                    still.append(await self._send(entry.index, partition))
                else:
                    still.append(entry)
            elif future.cancelled() or future.exception() is not None:
                error = "cancelled" if future.cancelled() else type(future.exception()).__name__
                self.production.errors[error] += 1
                self.production.resent += 1
                still.append(await self._send(entry.index, partition))
        return still

    async def _send(self, i: int, partition: int) -> "_Pending":
        key, value = self.records[i]
        failures = 0
        while True:
            producer, generation = await self._current()
            try:
                future: asyncio.Future[Any] = await producer.send(
                    self.topic, value=value, key=key, partition=partition
                )
                future.add_done_callback(self._acked)
                return _Pending(i, future, generation)
            except KafkaError as exc:  # the partition's batch did not drain in time, or a fatal error
                self.production.errors[type(exc).__name__] += 1
                failures += 1
                if failures >= 3:
                    await self._replace(generation)
                    failures = 0
                await asyncio.sleep(0.5)

    def _acked(self, future: "asyncio.Future[Any]") -> None:
        if not future.cancelled() and future.exception() is None:
            self.production.acked += 1

    async def _current(self) -> tuple[AIOKafkaProducer, int]:
        async with self._lock:
            while self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=hosts(self.bootstrap),
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=5,
                    max_batch_size=256 * 1024,
                    request_timeout_ms=30_000,
                )
                try:
                    await within(producer.start(), 30)
                except TRANSIENT as exc:
                    self.production.errors[f"start: {type(exc).__name__}"] += 1
                    await close(producer, CALL_TIMEOUT_S)
                    await asyncio.sleep(1)
                    continue
                self._producer = producer
                self._generation += 1
                self.production.producers_created += 1
            return self._producer, self._generation

    async def _replace(self, generation: int) -> None:
        """Drop the producer of `generation` (if still current); the next send creates another."""
        async with self._lock:
            if self._generation == generation and self._producer is not None:
                old, self._producer = self._producer, None
                self._dropped.add(generation)
                await close(old, CALL_TIMEOUT_S)
