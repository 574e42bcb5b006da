"""The input topic and the cluster's metadata a scenario aims by: which broker leads which
partition, which coordinates the group or a transactional id, which partitions are short of
replicas (a rolling restart waits for none)."""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from bench.chaos.kafka.clients import CALL_TIMEOUT_S, TRANSIENT, hosts, retrying
from kafka_delivery.tools import close, within

PARTITIONS = 6
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
GROUP_COORDINATOR, TRANSACTION_COORDINATOR = 0, 1

T = TypeVar("T")


async def create_input_topic(bootstrap: str, name: str) -> None:
    """6 partitions, replication factor 3, min.insync.replicas 2; waits until every partition has a leader."""

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=hosts(bootstrap), request_timeout_ms=10_000)
        try:
            await admin.start()
            response = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        PARTITIONS,
                        REPLICATION_FACTOR,
                        topic_configs={"min.insync.replicas": str(MIN_INSYNC_REPLICAS)},
                    )
                ]
            )
            for topic, code, *_ in response.topic_errors:
                if code and for_code(code).__name__ != "TopicAlreadyExistsError":
                    raise for_code(code)(f"creating {topic}")
        finally:
            await close(admin, CALL_TIMEOUT_S)

    await retrying(create, what=f"create topic {name}", timeout=60)

    async def led() -> bool:
        return len((await leaders(bootstrap, name)).keys()) == PARTITIONS

    deadline = time.monotonic() + 60
    while not await _quietly(led, default=False):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name}: not every partition has a leader after 60s")
        await asyncio.sleep(0.5)


async def _quietly(call: Callable[[], Awaitable[T]], *, default: T) -> T:
    try:
        return await within(call(), CALL_TIMEOUT_S)
    except TRANSIENT:
        return default


async def _with_client(bootstrap: str, use: Callable[[AIOKafkaClient], Awaitable[T]]) -> T:
    client = AIOKafkaClient(bootstrap_servers=hosts(bootstrap), request_timeout_ms=5_000)
    try:
        await within(client.bootstrap(), CALL_TIMEOUT_S)
        return await within(use(client), CALL_TIMEOUT_S)
    finally:
        await close(client, CALL_TIMEOUT_S)


async def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> id of its leader broker (partitions without a live leader are left out)."""

    async def use(client: AIOKafkaClient) -> dict[int, int]:
        await client.force_metadata_update()
        found: dict[int, int] = {}
        for p in client.cluster.partitions_for_topic(topic) or ():
            leader = client.cluster.leader_for_partition(TopicPartition(topic, p))
            if leader is not None and leader >= 0:
                found[p] = leader
        return found

    return await _with_client(bootstrap, use)


async def coordinators(bootstrap: str, kind: int, keys: Sequence[str]) -> dict[str, int]:
    """FindCoordinator: key (group id, or transactional id) -> broker id."""

    async def use(client: AIOKafkaClient) -> dict[str, int]:
        return {key: int(await client.coordinator_lookup(kind, key)) for key in keys}

    return await _with_client(bootstrap, use)


async def under_replicated(bootstrap: str) -> list[str]:
    """Partitions of every topic (internal ones included) whose ISR is smaller than their replica set."""

    async def describe() -> list[Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=hosts(bootstrap), request_timeout_ms=5_000)
        try:
            await admin.start()
            topics: list[Any] = await admin.describe_topics()
            return topics
        finally:
            await close(admin, CALL_TIMEOUT_S)

    short = []
    for topic in await within(describe(), 10):
        for p in topic["partitions"]:
            if len(p["isr"]) < len(p["replicas"]):
                short.append(f"{topic['topic']}-{p['partition']}")
    return short


def most_common(counts: Iterable[int], *, prefer: Sequence[int] = ()) -> int:
    """The broker id that occurs most often; ties go to the earlier one in `prefer`, then the lowest id."""
    tally = Counter(counts)
    rank = {node: i for i, node in enumerate(prefer)}
    return min(tally, key=lambda node: (-tally[node], rank.get(node, len(rank)), node))
