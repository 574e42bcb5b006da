"""Liveness and readiness of a consumer service: broker reachable, topics present, group joined."""

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from order_service.messaging.metrics import PipelineMetrics


class GroupMembership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks whether the consumer is a member of its group; the pipeline's listener is chained in."""

    def __init__(self, metrics: PipelineMetrics, group: str) -> None:
        self._metrics = metrics
        self._group = group
        self._inner: ConsumerRebalanceListener | None = None
        self.joined = False
        self.assigned: frozenset[TopicPartition] = frozenset()

    def chain(self, inner: ConsumerRebalanceListener) -> None:
        self._inner = inner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self._inner is not None:
            await self._inner.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # Called after every successful join, also with an empty assignment.
        self.joined = True
        self.assigned = frozenset(assigned)
        self._metrics.rebalances.inc()
        self._metrics.assigned.labels(self._group).set(len(assigned))
        if self._inner is not None:
            await self._inner.on_partitions_assigned(assigned)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str


class ReadinessProbe:
    """Asks the cluster for metadata (cached briefly) and combines it with group membership."""

    def __init__(
        self,
        build_admin: Callable[[], AIOKafkaAdminClient],
        *,
        topics: Sequence[str],
        membership: GroupMembership,
        timeout_s: float = 3.0,
        cache_s: float = 1.0,
    ) -> None:
        self._build_admin = build_admin
        self._topics = tuple(topics)
        self._membership = membership
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._admin: AIOKafkaAdminClient | None = None
        self._last: tuple[float, Readiness] | None = None
        self._lock = asyncio.Lock()

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    async def check(self) -> Readiness:
        async with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] > self._cache_s:
                self._last = (now, await self._probe())
            return self._last[1]

    async def _probe(self) -> Readiness:
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._admin is None:
                    admin = self._build_admin()
                    await admin.start()
                    self._admin = admin
                existing = set(await self._admin.list_topics())
        except Exception as exc:  # noqa: BLE001 - any failure to get metadata means not ready
            await self.stop()
            return Readiness(False, f"broker unreachable: {type(exc).__name__}")
        if missing := [t for t in self._topics if t not in existing]:
            return Readiness(False, f"missing topics: {', '.join(missing)}")
        if not self._membership.joined:
            return Readiness(False, "consumer has not joined its group")
        return Readiness(True, "ok")
