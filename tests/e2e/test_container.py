"""The built image, run as users run it, next to Kafka: health, non-root, graceful stop, restart."""

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from tests.e2e.conftest import DOCKER, docker
from tests.support.containers import publish_on_loopback
from tests.support.kafka import create_topics, produce, produce_paced, read_all, record_count, unique
from tests.support.orders import keys, order_ids, valid_orders
from tests.support.service import free_port
from tests.support.waiting import eventually

GRACE_S = 20


def health(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return 0


def docker_health(container_id: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", container_id)


@pytest.fixture
async def topics(kafka_on_network: tuple[DockerContainer, str]) -> dict[str, str]:
    names = {name: unique(f"e2e-{name}") for name in ("input", "output", "dead_letter", "group")}
    await create_topics(kafka_on_network[1], [names["input"]], partitions=6)
    return names


def start_service(image: str, network: Network, topics: dict[str, str]) -> tuple[DockerContainer, int]:
    port = free_port()
    # The image's HEALTHCHECK (test, timeout, start period) polled every second instead of every
    # 5 s; the retries keep its 15 s to "unhealthy". Docker takes what is not given from the image.
    health_check = {"interval": 1_000_000_000, "retries": 15}  # nanoseconds
    container = DockerContainer(image, healthcheck=health_check).with_network(network)
    publish_on_loopback(container, 8080, port)
    settings = {
        "KAFKA__BOOTSTRAP_SERVERS": "kafka:19092",
        "TOPICS__INPUT": topics["input"],
        "TOPICS__OUTPUT": topics["output"],
        "TOPICS__DEAD_LETTER": topics["dead_letter"],
        "CONSUMER__GROUP_ID": topics["group"],
        "CONSUMER__MAX_BATCH_RECORDS": "200",
        "SHUTDOWN_GRACE_PERIOD_S": str(GRACE_S - 5),
    }
    for key, value in settings.items():
        container.with_env(f"ORDER_SERVICE_{key}", value)
    container.start()
    return container, port


async def wait_healthy(container_id: str) -> None:
    async def status() -> str:
        return docker_health(container_id)

    await eventually(status, until=lambda s: s == "healthy", timeout=90, interval=1, what="container healthy")


@pytest.fixture
async def healthy_service(
    service_image: str, network: Network, topics: dict[str, str]
) -> AsyncIterator[tuple[str, int]]:
    """The service container, once Docker reports it healthy: its id and published port."""
    service, port = start_service(service_image, network, topics)
    try:
        container_id = service.get_wrapped_container().id
        await wait_healthy(container_id)
        yield container_id, port
    finally:
        service.stop()


async def test_the_container_processes_orders_as_non_root_and_reports_ready(
    healthy_service: tuple[str, int],
    kafka_on_network: tuple[DockerContainer, str],
    topics: dict[str, str],
) -> None:
    kafka, bootstrap = kafka_on_network
    container_id, port = healthy_service
    assert docker("exec", container_id, "id", "-u") != "0", "runs as non-root"
    assert health(port, "/health/live") == 200
    orders = valid_orders(500, prefix="e2e")
    await produce(bootstrap, topics["input"], orders)
    output = await read_all(bootstrap, topics["output"], expected=len(orders))
    assert sorted(order_ids(output)) == sorted(keys(orders))

    kafka.get_wrapped_container().stop(timeout=20)
    await eventually(
        lambda: asyncio.to_thread(health, port, "/health/ready"),
        until=lambda s: s == 503,
        timeout=60,
        what="ready 503 with Kafka stopped",
    )
    assert health(port, "/health/live") == 200, "alive while not ready"
    kafka.get_wrapped_container().start()
    await eventually(
        lambda: asyncio.to_thread(health, port, "/health/ready"),
        until=lambda s: s == 200,
        timeout=120,
        what="ready 200 once Kafka is back",
    )


async def test_docker_stop_mid_stream_exits_zero_and_a_restart_loses_and_duplicates_nothing(
    healthy_service: tuple[str, int],
    kafka_on_network: tuple[DockerContainer, str],
    topics: dict[str, str],
) -> None:
    _, bootstrap = kafka_on_network
    container_id, _ = healthy_service
    orders = valid_orders(20_000, prefix="stop")
    producing = asyncio.create_task(produce_paced(bootstrap, topics["input"], orders, chunk=200))

    async def processed() -> int:
        return await record_count(bootstrap, topics["output"])

    await eventually(
        processed, until=lambda n: n >= 2_000, timeout=120, interval=0.05, what="processing under way"
    )
    started = time.monotonic()
    docker("stop", "-t", str(GRACE_S), container_id)
    stop_s = time.monotonic() - started
    exit_code = docker("inspect", "--format", "{{.State.ExitCode}}", container_id)
    at_stop = await processed()
    print(f"docker stop took {stop_s:.1f}s, exit code {exit_code}, after {at_stop} of {len(orders)} outputs")
    assert at_stop < len(orders), "the stop landed mid-stream"
    assert exit_code == "0"
    assert stop_s < GRACE_S
    await producing
    docker("start", container_id)
    output = await read_all(bootstrap, topics["output"], expected=len(orders), timeout=180)
    counts = Counter(order_ids(output))
    assert set(counts) == set(keys(orders)), "nothing lost"
    assert {k: n for k, n in counts.items() if n > 1} == {}, "nothing duplicated"
    assert all(json.loads(r.value)["status"] == "processed" for r in output)


def test_the_container_refuses_a_variable_that_names_no_setting(service_image: str) -> None:
    # No broker and no network: the check comes before any network I/O.
    done = subprocess.run(
        [
            DOCKER,
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            "ORDER_SERVICE_DELIVERY__GUARANTE=exactly_once",
            service_image,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert (done.stdout + done.stderr).splitlines() == [
        "invalid configuration: ORDER_SERVICE_DELIVERY__GUARANTE: names no setting; "
        "did you mean ORDER_SERVICE_DELIVERY__GUARANTEE?"
    ]
