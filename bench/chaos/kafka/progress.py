"""The group's committed progress over the input, as the monitor samples it every 0.5 s while
brokers die: each request bounded, a partition whose leader is gone keeping its last known end."""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.chaos.kafka.clients import CALL_TIMEOUT_S, TRANSIENT, hosts
from bench.chaos.kafka.metadata import PARTITIONS
from kafka_delivery.tools import close

log = logging.getLogger("bench.chaos")


@dataclass(frozen=True, slots=True)
class Offsets:
    committed: dict[int, int]  # partition -> committed offset (0 when none yet)
    end: dict[int, int]
    stale: frozenset[int] = frozenset()  # partitions whose end offset is the last one known

    @property
    def committed_total(self) -> int:
        return sum(self.committed.values())

    @property
    def end_total(self) -> int:
        return sum(self.end.values())

    @property
    def drained(self) -> bool:
        return not self.stale and all(self.committed.get(p, 0) >= end for p, end in self.end.items())

    def reached(self, ends: dict[int, int]) -> bool:
        return all(self.committed.get(p, 0) >= end for p, end in ends.items())


class Progress:
    """The group's committed offsets and the end offsets of the input, each request bounded.

    The committed offsets come from the group coordinator (cached, looked up again after a
    failure); the end offsets are asked per partition, so that a partition whose leader is gone
    keeps its last known end instead of spoiling the sample. Clients are rebuilt after a few
    failures in a row (a client whose broker died may keep a dead connection).
    """

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._coordinator: int | None = None
        self._ends: dict[int, int] = {}
        self._known: dict[int, int] = {}
        self._failures = 0

    async def sample(self, timeout: float = 5.0) -> Offsets | None:
        """None when the committed offsets could not be read within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout + 1):
                admin, consumer = await self._clients()
        except TRANSIENT as exc:
            await self._failed(exc)
            return None
        committed, ends = await asyncio.gather(
            self._committed(admin, timeout),
            asyncio.gather(*(self._end(consumer, tp, min(timeout, 3.0)) for tp in self.partitions)),
        )
        if isinstance(committed, BaseException):
            await self._failed(committed)
            return None
        offsets = {tp.partition: meta.offset for tp, meta in committed.items()}
        if any(offsets.get(partition, -1) < 0 for partition in self._known):
            # No offset where there was one: a coordinator that is still loading the offsets topic
            # answers with none (aiokafka's admin client does not check OffsetFetch's top-level
            # error). Not a sample.
            return None
        self._known.update({tp.partition: meta.offset for tp, meta in committed.items() if meta.offset >= 0})
        self._failures = 0
        stale = frozenset(tp.partition for tp, end in zip(self.partitions, ends, strict=True) if end is None)
        for tp, end in zip(self.partitions, ends, strict=True):
            if end is not None:
                self._ends[tp.partition] = end
        return Offsets(
            committed={tp.partition: max(0, meta.offset) for tp, meta in committed.items()},
            end={tp.partition: self._ends.get(tp.partition, 0) for tp in self.partitions},
            stale=stale,
        )

    async def _committed(
        self, admin: AIOKafkaAdminClient, timeout: float
    ) -> dict[TopicPartition, Any] | BaseException:
        try:
            async with asyncio.timeout(timeout):
                if self._coordinator is None:
                    self._coordinator = await admin.find_coordinator(self.group)
                found: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(
                    self.group, group_coordinator_id=self._coordinator, partitions=self.partitions
                )
                return found
        except TRANSIENT as exc:
            self._coordinator = None
            return exc

    async def _end(self, consumer: AIOKafkaConsumer, tp: TopicPartition, timeout: float) -> int | None:
        try:
            async with asyncio.timeout(timeout):
                end: int = (await consumer.end_offsets([tp]))[tp]
                return end
        except TRANSIENT:
            return None

    async def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        log.debug("progress sample failed: %r", exc)
        if self._failures >= 10:  # a client whose broker died may hold on to a dead connection
            await self.close()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            await self.close()
            admin = AIOKafkaAdminClient(bootstrap_servers=hosts(self.bootstrap), request_timeout_ms=5_000)
            consumer = AIOKafkaConsumer(
                bootstrap_servers=hosts(self.bootstrap),
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=5_000,
            )
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await close(admin, CALL_TIMEOUT_S)
                await close(consumer, CALL_TIMEOUT_S)
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        self._failures = 0
        self._coordinator = None
        if admin is not None:
            await close(admin, CALL_TIMEOUT_S)
        if consumer is not None:
            await close(consumer, CALL_TIMEOUT_S)
