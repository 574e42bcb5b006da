"""The brokers' second listener, behind Toxiproxy (`scripts/kafka` KAFKA_CLIENT_PORT and
KAFKA_ADVERTISED_CLIENT_PORT, bench/chaos/network.py): a client bootstrapped at the proxies learns
only the proxies' addresses, so each of its connections crosses one, and a fault on a proxy cuts
that client off while a direct client goes on."""

import asyncio

import pytest
from aiokafka import AIOKafkaClient
from bench.chaos.network import proxy_name
from bench.kafka.cluster import LocalCluster
from bench.toxiproxy import Toxiproxy, timeout

from tests.integration.cluster.conftest import PROXY_PORT
from tests.support.kafka import create_topics, produce, read_all, unique


async def broker_ports(bootstrap: str) -> set[int]:
    """The ports of the brokers that the cluster's metadata tells a client bootstrapped here."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await client.bootstrap()
    try:
        return {broker.port for broker in client.cluster.brokers()}
    finally:
        await client.close()


async def test_a_client_of_the_proxies_learns_only_the_proxies(
    kafka_cluster: LocalCluster, network: Toxiproxy
) -> None:
    kafka_cluster.ensure_all_running()
    assert kafka_cluster.client_bootstrap != kafka_cluster.bootstrap
    proxied = await broker_ports(kafka_cluster.client_bootstrap)
    direct = await broker_ports(kafka_cluster.bootstrap)
    assert proxied == {PROXY_PORT + node - 1 for node in kafka_cluster.nodes}
    assert direct == {kafka_cluster.port + node - 1 for node in kafka_cluster.nodes}


async def test_a_blackholed_proxy_stops_its_clients_and_no_one_else(
    kafka_cluster: LocalCluster, network: Toxiproxy
) -> None:
    kafka_cluster.ensure_all_running()
    topic = unique("proxied")
    await create_topics(kafka_cluster.bootstrap, [topic], partitions=1, replication_factor=3)
    await produce(kafka_cluster.bootstrap, topic, [(b"k", b"before", [])])
    toxics = [timeout(0, stream="upstream"), timeout(0, stream="downstream")]
    try:
        for node in kafka_cluster.nodes:
            for toxic in toxics:
                network.add_toxic(proxy_name(node), toxic)
        # The proxies accept the connection; the ApiVersions request gets no answer (aiokafka's own
        # request timeout here is 5 s: the 4 s bound is what ends the wait).
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(broker_ports(kafka_cluster.client_bootstrap), timeout=4)
        # The direct listener is not behind the proxies: its clients go on.
        await produce(kafka_cluster.bootstrap, topic, [(b"k", b"during", [])])
    finally:
        network.reset()
    assert [r.value for r in await read_all(kafka_cluster.client_bootstrap, topic, expected=2)] == [
        b"before",
        b"during",
    ]
