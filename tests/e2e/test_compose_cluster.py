"""The compose `cluster` profile: three brokers (RF 3, min ISR 2) and two service instances in one
group; 1,000 orders through it while the group's coordinator broker is killed half-way, then
`verify` from the host: every order has exactly one outcome, in order."""

import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.conftest import kafka_image
from tests.e2e.conftest import COMPOSE_FILES, DOCKER, docker
from tests.e2e.test_compose import compose_command
from tests.support.kafka import hosts, produce, unique, wait_all_committed
from tests.support.orders import valid_orders
from tests.support.service import scrape, total
from tests.support.waiting import eventually

SERVICES = ("order-service-1", "order-service-2")
# What the compose file gives the services: the default topics, the group set here.
INPUT, OUTPUT, DEAD_LETTER = "orders.created", "orders.processed", "orders.created.dlq"
GROUP = "order-service"
ORDERS = 1_000


def free_ports(count: int) -> list[int]:
    """Free ports on 127.0.0.1 below Linux's ephemeral range (32768-60999), where no client
    connection of anything else can take one between this check and the container's start."""
    ports: list[int] = []
    for port in random.sample(range(20_000, 32_768), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise AssertionError(f"no {count} free ports in 20000-32767")


@dataclass
class Cluster:
    command: list[str]
    env: dict[str, str]
    kafka_ports: list[int]
    service_ports: list[int]

    @property
    def bootstrap(self) -> str:
        """The brokers as clients on the host reach them (their HOST listeners)."""
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_ports)

    def compose(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [*self.command, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed: {done.stderr[-3000:]}")
        return done.stdout.strip()

    def container(self, service: str) -> str:
        container_id = self.compose("ps", "-q", service)
        assert container_id, f"no container for {service}"
        return container_id

    def print_logs(self) -> None:
        """The end of each container's log, for a failed run."""
        done = subprocess.run(
            [*self.command, "logs", "--no-color", "--tail", "300"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        print(done.stdout[-200_000:], done.stderr[-2_000:])


@pytest.fixture
def cluster(service_image: str) -> Iterator[Cluster]:
    kafka_ports, service_ports = (ports := free_ports(5))[:3], ports[3:]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ORDER_SERVICE_")},
        # Debian's client first: compose 1.29 shells out to `docker` for builds.
        "PATH": f"{Path(DOCKER).parent}:{os.environ['PATH']}",
        "COMPOSE_PROJECT_NAME": unique("orders-cluster").replace(".", "-"),
        "KAFKA_IMAGE": kafka_image(),
        "SERVICE_IMAGE": service_image,
        **{f"KAFKA_{i}_HOST_PORT": str(port) for i, port in enumerate(kafka_ports, 1)},
        **{f"SERVICE_{i}_HOST_PORT": str(port) for i, port in enumerate(service_ports, 1)},
        "ORDER_SERVICE_CONSUMER__GROUP_ID": GROUP,
        "ORDER_SERVICE_DELIVERY__GUARANTEE": "at_least_once",
    }
    command = [*compose_command(), *COMPOSE_FILES, "--profile", "cluster"]
    try:
        yield Cluster(command, env, kafka_ports, service_ports)
    finally:
        subprocess.run([*command, "down", "-v", "--remove-orphans"], env=env, check=False, timeout=180)


async def coordinator(bootstrap: str, group: str) -> int:
    """The node id of the broker coordinating `group`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=hosts(bootstrap))
    await admin.start()
    try:
        node: int = await admin.find_coordinator(group)
        return node
    finally:
        await admin.close()


async def replica_counts(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=hosts(bootstrap))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return [len(p["replicas"]) for p in described["partitions"]]
    finally:
        await admin.close()


def run_verify(bootstrap: str) -> tuple[int, dict[str, Any], str]:
    """`verify --json` from the host, with the settings the stack's services use."""
    # The module moves to order_service.cli.verify; whichever exists.
    module = next(
        m for m in ("order_service.cli.verify", "order_service.verify") if importlib.util.find_spec(m)
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ORDER_SERVICE_")},
        "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ORDER_SERVICE_CONSUMER__GROUP_ID": GROUP,
        "ORDER_SERVICE_TOPICS__INPUT": INPUT,
        "ORDER_SERVICE_TOPICS__OUTPUT": OUTPUT,
        "ORDER_SERVICE_TOPICS__DEAD_LETTER": DEAD_LETTER,
    }
    done = subprocess.run(
        [sys.executable, "-m", module, "--json", "--timeout", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.stdout.count("\n") == 1, (done.stdout, done.stderr)
    return done.returncode, json.loads(done.stdout), done.stderr


async def test_cluster_profile_survives_a_broker_killed_while_processing(cluster: Cluster) -> None:
    started = time.monotonic()

    def mark(step: str) -> None:
        print(f"cluster smoke: {step} at {time.monotonic() - started:.0f}s")

    try:
        # Naming the services keeps the single-node stack down; the brokers come as dependencies,
        # and compose waits until they are healthy.
        cluster.compose("up", "-d", "--no-build", *SERVICES, timeout=600)
        mark("brokers healthy, services started")
        services = [cluster.container(s) for s in SERVICES]

        async def health() -> list[str]:
            return [docker("inspect", "--format", "{{.State.Health.Status}}", c) for c in services]

        await eventually(
            health, until=lambda s: s == ["healthy"] * 2, timeout=300, interval=2, what="services healthy"
        )
        mark("services healthy")
        assert await replica_counts(cluster.bootstrap, INPUT) == [3] * 6  # 6 partitions, RF 3

        async def assigned() -> list[float]:
            family = "order_service_assigned_partitions"
            return [total(scrape(port), family, family, group=GROUP) for port in cluster.service_ports]

        # One group: the six input partitions shared by both instances.
        await eventually(
            assigned,
            until=lambda a: sum(a) == 6 and min(a) > 0,
            timeout=120,
            interval=1,
            what="the input partitions spread over both instances",
        )

        orders = valid_orders(ORDERS, prefix="cluster")
        half = ORDERS // 2
        await produce(cluster.bootstrap, INPUT, orders[:half])
        victim = f"kafka-{await coordinator(cluster.bootstrap, GROUP)}"
        docker("kill", cluster.container(victim), timeout=60)
        mark(f"{half} orders produced, killed {victim} (the group's coordinator)")
        await produce(cluster.bootstrap, INPUT, orders[half:])
        mark(f"{ORDERS} orders produced")

        await wait_all_committed(cluster.bootstrap, INPUT, GROUP, timeout=300)
        mark("all input committed")
        code, result, stderr = run_verify(cluster.bootstrap)
        mark(f"verify exit {code}")
        print(f"cluster smoke: verify counts {result.get('counts')}")
        assert (code, result["result"]) == (0, "clean"), json.dumps(result, indent=1)[:6000] + stderr
        counts = result["counts"]
        assert counts["inputs"] == ORDERS
        assert counts["processed"] + counts["dead_lettered"] == ORDERS
        assert counts["processed"] == ORDERS  # all valid
        assert {k: counts[k] for k in ("missing", "duplicates", "unmatched", "order_violations")} == {
            "missing": 0,
            "duplicates": 0,
            "unmatched": 0,
            "order_violations": 0,
        }
        # One broker of three gone: the services stay healthy, and still share the partitions.
        assert await health() == ["healthy"] * 2
        assert sum(await assigned()) == 6
    except BaseException:
        cluster.print_logs()
        raise
