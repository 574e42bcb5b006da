"""A 3-node cluster with broker faults: the bootstrap list, readiness, log volume, bounded shutdown."""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from bench.kafka.cluster import LocalCluster

from tests.integration.cluster.conftest import FENCED_AFTER_S
from tests.support.kafka import create_topics, produce, read_all, record_count, wait_all_committed
from tests.support.orders import Record, order_ids, valid_orders
from tests.support.service import ServiceProcess, ServiceTopics, ready
from tests.support.waiting import eventually

RF3 = {"topics__replication_factor": "3"}


@pytest.fixture
async def cluster(kafka_cluster: LocalCluster) -> AsyncIterator[LocalCluster]:
    kafka_cluster.ensure_all_running()
    yield kafka_cluster
    kafka_cluster.ensure_all_running()


async def fresh_topics(cluster: LocalCluster) -> ServiceTopics:
    topics = ServiceTopics()
    await create_topics(cluster.bootstrap, [topics.input], partitions=6, replication_factor=3)
    return topics


async def produce_for(bootstrap: str, topic: str, seconds: float, *, prefix: str) -> list[Record]:
    """About 200 orders every half second, for `seconds`."""
    sent: list[Record] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunk = valid_orders(200, prefix=f"{prefix}-{len(sent)}")
        await produce(bootstrap, topic, chunk)
        sent.extend(chunk)
        await asyncio.sleep(0.5)
    return sent


async def test_starts_and_processes_with_the_first_listed_broker_down(cluster: LocalCluster) -> None:
    topics = await fresh_topics(cluster)
    cluster.kill(1)
    service = ServiceProcess(cluster.bootstrap, topics, **RF3).start()
    try:
        orders = valid_orders(1_000, prefix="first-down")
        await produce(cluster.bootstrap, topics.input, orders)
        processed = await read_all(cluster.bootstrap, topics.output, expected=len(orders), timeout=120)
        assert sorted(order_ids(processed)) == sorted(k.decode() for k, _, _ in orders if k)
        await eventually(lambda: ready(service), until=lambda s: s == 200, timeout=30, what="ready")
    finally:
        service.stop()
        print(service.output()[-3000:])


async def test_one_broker_down_keeps_the_service_ready_processing_and_quiet(cluster: LocalCluster) -> None:
    topics = await fresh_topics(cluster)
    service = ServiceProcess(cluster.bootstrap, topics, **RF3).start()
    try:
        await produce(cluster.bootstrap, topics.input, valid_orders(200, prefix="warm-up"))
        await read_all(cluster.bootstrap, topics.output, expected=200, timeout=60)
        await eventually(lambda: ready(service), until=lambda s: s == 200, timeout=30, what="ready")
        # Orders keep coming through the whole window, which spans the fencing of the killed node
        # (acks=all stalls until then) with a margin: its second half is after it.
        window = 2 * FENCED_AFTER_S + 6
        feeding = asyncio.create_task(
            produce_for(cluster.bootstrap, topics.input, window + 4, prefix="outage")
        )
        lines_before = len(service.output().splitlines())
        cluster.kill(2)
        killed_at = time.monotonic()
        statuses, outputs = [], []
        while time.monotonic() - killed_at < window:
            statuses.append(await ready(service))
            outputs.append(await record_count(cluster.bootstrap, topics.output))
            await asyncio.sleep(0.5)
        outage_lines = service.output().splitlines()[lines_before:]
        cluster.start(2)
        sent = await feeding
        # At-least-once may publish an order twice around the kill: `expected` counts records, so
        # every input is committed first, and read_all then reads to the end (no order missed).
        await wait_all_committed(cluster.bootstrap, topics.input, topics.group, timeout=120)
        processed = await read_all(cluster.bootstrap, topics.output, expected=200 + len(sent), timeout=120)
    finally:
        service.stop()
        print(service.output()[-3000:])
    assert Counter(statuses) == Counter({200: len(statuses)}), statuses
    assert outputs[-1] > outputs[len(outputs) // 2] > outputs[0], f"outputs kept coming: {outputs}"
    assert len(outage_lines) < 50, "\n".join(outage_lines)
    assert len(set(order_ids(processed))) == 200 + len(sent)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_sigterm_in_an_outage_ends_within_the_grace_period_and_loses_nothing(
    cluster: LocalCluster, guarantee: str
) -> None:
    topics = await fresh_topics(cluster)
    settings = {**RF3, "delivery__guarantee": guarantee, "shutdown_grace_period_s": "5"}
    orders = valid_orders(3_000, prefix=f"outage-{guarantee}")
    await produce(cluster.bootstrap, topics.input, orders)
    service = ServiceProcess(cluster.bootstrap, topics, **settings).start()
    try:
        await eventually(
            lambda: record_count(cluster.bootstrap, topics.output),
            until=lambda n: n >= 500,
            timeout=60,
            what="processing under way",
        )
        for node in cluster.nodes:
            cluster.pause(node)
        await asyncio.sleep(1)  # let in-flight requests hang on the paused brokers
        stopped_at = time.monotonic()
        service.signal(15)
        await asyncio.to_thread(service.wait, 30)
        took = time.monotonic() - stopped_at
    finally:
        for node in cluster.nodes:
            cluster.resume(node)
        service.stop()
    assert took < 5 + 5, f"exited {took:.1f}s after SIGTERM"
    first_run = service.output()

    restarted = ServiceProcess(cluster.bootstrap, topics, **settings).start()
    try:
        await wait_all_committed(cluster.bootstrap, topics.input, topics.group, timeout=120)
        processed = await read_all(cluster.bootstrap, topics.output, expected=len(orders), timeout=60)
    finally:
        restarted.stop()
        print(first_run[-3000:], restarted.output()[-2000:])
    ids = order_ids(processed)
    assert set(ids) == {k.decode() for k, _, _ in orders if k}, "0 lost"
    if guarantee == "exactly_once":
        assert len(ids) == len(set(ids)), "0 duplicates"
