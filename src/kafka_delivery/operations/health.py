"""Readiness of a consumer service: broker reachable, topics present, group joined (`GroupMembership`,
membership.py, tells whether it is)."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient

from kafka_delivery.operations.membership import GroupMembership


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str
    blocked: tuple[str, ...] = ()


class ReadinessProbe:
    """Ready = can make progress: every consumer in its group, no partition blocked, every dependency
    (`dependencies`: each says what is wrong with it, or None) available, topics present, and the
    leaders of the assigned partitions and the coordinators answer. Cached briefly.

    A broker that leads none of our partitions and coordinates nothing of ours may be down. A
    cluster-side failure counts only once it has lasted `tolerance_s`: a broker's death moves
    leadership within seconds (KRaft fences it after broker.session.timeout.ms, 9 s by default),
    and readiness should not flap for a failover the service rides out.
    """

    def __init__(
        self,
        build_client: Callable[[], AIOKafkaClient],
        *,
        topics: Sequence[str],
        memberships: Sequence[GroupMembership],
        blocked: Callable[[], Mapping[TopicPartition, str]],
        transactional_ids: Callable[[], Iterable[str]] = tuple,
        dependencies: Sequence[Callable[[], Awaitable[str | None]]] = (),
        timeout_s: float = 3.0,
        cache_s: float = 1.0,
        tolerance_s: float = 15.0,
    ) -> None:
        self._build_client = build_client
        self._topics = tuple(topics)
        self._memberships = tuple(memberships)
        self._blocked = blocked
        self._transactional_ids = transactional_ids
        self._dependencies = tuple(dependencies)
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._tolerance_s = tolerance_s
        self._failing_since: float | None = None
        self._client: AIOKafkaClient | None = None
        self._last: tuple[float, Readiness] | None = None
        self._lock = asyncio.Lock()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def check(self) -> Readiness:
        async with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] > self._cache_s:
                self._last = (now, await self._probe())
            return self._last[1]

    async def _probe(self) -> Readiness:
        if waiting := [m.group for m in self._memberships if not m.joined]:
            return Readiness(False, f"consumer has not joined group {', '.join(waiting)}")
        if blocked := self._blocked():
            lines = tuple(f"{tp.topic}-{tp.partition}: {why}" for tp, why in sorted(blocked.items()))
            return Readiness(False, f"{len(lines)} partition(s) blocked", lines)
        for dependency in self._dependencies:
            try:
                async with asyncio.timeout(self._timeout_s):
                    problem = await dependency()
            except Exception as exc:  # noqa: BLE001 - a check that fails means not ready
                problem = f"a dependency check failed: {type(exc).__name__}"
            if problem is not None:
                return Readiness(False, problem)
        try:
            async with asyncio.timeout(self._timeout_s):
                cluster = await self._cluster_answers()
        except Exception as exc:  # noqa: BLE001 - any failure to get metadata means not ready
            await self.stop()
            cluster = Readiness(False, f"cluster did not answer: {type(exc).__name__}")
        now = time.monotonic()
        if cluster.ready:
            self._failing_since = None
            return cluster
        self._failing_since = self._failing_since or now
        if now - self._failing_since < self._tolerance_s:
            return Readiness(True, f"ok; for {now - self._failing_since:.0f}s: {cluster.reason}")
        return cluster

    async def _cluster_answers(self) -> Readiness:
        if self._client is None:
            client = self._build_client()
            await client.bootstrap()
            self._client = client
        client = self._client
        await client.force_metadata_update()
        cluster = client.cluster
        if missing := [t for t in self._topics if cluster.partitions_for_topic(t) is None]:
            return Readiness(False, f"missing topics: {', '.join(missing)}")
        for membership in self._memberships:
            for tp in sorted(membership.assigned):
                leader = cluster.leader_for_partition(tp)
                if leader is None or leader < 0 or not await client.ready(leader):
                    return Readiness(False, f"the leader of {tp.topic}-{tp.partition} does not answer")
        coordinators = [(0, m.group) for m in self._memberships]
        coordinators += [(1, txn_id) for txn_id in self._transactional_ids()]
        for kind, key in coordinators:
            if not await client.ready(await client.coordinator_lookup(kind, key)):
                return Readiness(
                    False, f"the {('group', 'transaction')[kind]} coordinator of {key} does not answer"
                )
        return Readiness(True, "ok")
