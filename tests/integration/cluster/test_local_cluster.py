"""`scripts/kafka` node control on a real 3-node cluster: a killed node comes back with its own
data, acks=all keeps working while it is gone, and pause/resume show in the status."""

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from bench.kafka.cluster import LocalCluster

from tests.support.kafka import produce, read_all, unique
from tests.support.waiting import eventually

PARTITIONS = 3
VICTIM = 2
ALL_RUNNING = {1: "running", 2: "running", 3: "running"}


def values(start: int, stop: int) -> list[bytes]:
    return [f"order-{i}".encode() for i in range(start, stop)]


def orders(start: int, stop: int) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    return [(f"key-{i}".encode(), f"order-{i}".encode(), []) for i in range(start, stop)]


async def isr(bootstrap: str, topic: str) -> dict[int, list[int]]:
    """Partition -> in-sync replicas, as the cluster's metadata has them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return {p["partition"]: sorted(p["isr"]) for p in described["partitions"]}
    finally:
        await admin.close()


async def create_replicated_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 3)])
    finally:
        await admin.close()
    await eventually(
        lambda: isr(bootstrap, topic),
        until=lambda replicas: replicas == {p: [1, 2, 3] for p in range(PARTITIONS)},
        timeout=20,
        what=f"{topic} on all three nodes",
    )


def segments(cluster: LocalCluster, node: int, topic: str) -> dict[str, int]:
    """The node's own log segment files of the topic: path -> inode (a copy fetched anew has another)."""
    data = cluster.run_dir / f"node{node}" / "data"
    return {str(f.relative_to(data)): f.stat().st_ino for f in data.glob(f"{topic}-*/*.log")}


async def restore(cluster: LocalCluster) -> None:
    if await asyncio.to_thread(cluster.status) != ALL_RUNNING:
        await asyncio.to_thread(cluster.ensure_all_running)


async def test_a_killed_node_comes_back_with_its_data(kafka_cluster: LocalCluster) -> None:
    cluster = kafka_cluster
    await asyncio.to_thread(cluster.ensure_all_running)
    topic = unique("local-cluster")
    try:
        await create_replicated_topic(cluster.bootstrap, topic)
        await produce(cluster.bootstrap, topic, orders(0, 100))  # acks=all: on every in-sync replica
        before = segments(cluster, VICTIM, topic)
        assert len(before) == PARTITIONS

        await asyncio.to_thread(cluster.kill, VICTIM)
        assert await asyncio.to_thread(cluster.status) == {1: "running", 2: "stopped", 3: "running"}
        # Two replicas of three are left, min.insync.replicas is 2: acks=all still gets through once
        # the controller has fenced the dead node and moved its leaderships.
        await produce(cluster.bootstrap, topic, orders(100, 200))

        await asyncio.to_thread(cluster.start, VICTIM)
        assert await asyncio.to_thread(cluster.status) == ALL_RUNNING
        # It started on the same files (a wiped node would have fetched new ones) and caught up.
        assert segments(cluster, VICTIM, topic) == before
        await eventually(
            lambda: isr(cluster.bootstrap, topic),
            until=lambda replicas: all(VICTIM in r for r in replicas.values()),
            timeout=30,
            what=f"node {VICTIM} back in sync on every partition of {topic}",
        )
        records = await read_all(cluster.bootstrap, topic, expected=200, timeout=30)
        assert sorted(r.value for r in records) == sorted(values(0, 200))
    finally:
        await restore(cluster)


async def test_pause_and_resume_show_in_the_status(kafka_cluster: LocalCluster) -> None:
    cluster = kafka_cluster
    await asyncio.to_thread(cluster.ensure_all_running)
    try:
        await asyncio.to_thread(cluster.pause, 3)
        assert await asyncio.to_thread(cluster.status) == {1: "running", 2: "running", 3: "paused"}
        await asyncio.to_thread(cluster.resume, 3)
        assert await asyncio.to_thread(cluster.status) == ALL_RUNNING
    finally:
        await restore(cluster)
