"""The built service image, next to a Kafka container, on a Docker network this run creates."""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from tests.conftest import HOW_TO_GET_KAFKA, kafka_container_env, kafka_image, wait_for_kafka
from tests.support.containers import publish_on_loopback
from tests.support.service import free_port

ROOT = Path(__file__).parents[2]
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")
SERVICE_IMAGE = "localhost/order-service:e2e"
# On top of docker-compose.yml in the tests: its health checks polled every second (see the file).
COMPOSE_FILES = (
    *("--file", str(ROOT / "docker-compose.yml")),
    *("--file", str(ROOT / "tests" / "e2e" / "compose.test.yml")),
)


def docker(*args: str, timeout: float = 600, check: bool = True) -> str:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout.strip()


@pytest.fixture(scope="session")
def service_image() -> str:
    """Build the image as users do, from the Dockerfile, on PYTHON_BASE_IMAGE when set."""
    base = os.environ.get("PYTHON_BASE_IMAGE")
    args = ["build", "-t", SERVICE_IMAGE, *(["--build-arg", f"BASE_IMAGE={base}"] if base else [])]
    if Path("/etc/ssl/certs/ca-certificates.crt").exists():
        args += ["--secret", "id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt"]
    started = time.monotonic()
    try:
        subprocess.run(
            [DOCKER, *args, str(ROOT)], env={**os.environ, "DOCKER_BUILDKIT": "1"}, check=True, timeout=900
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"building the service image failed: {exc}\n{HOW_TO_GET_KAFKA}", pytrace=False)
    print(f"built {SERVICE_IMAGE} in {time.monotonic() - started:.1f}s")
    return SERVICE_IMAGE


def kafka_container(image: str, port: int, network: Network) -> DockerContainer:
    """Kafka reachable from the host at localhost:<port> and on `network` as kafka:19092."""
    container = DockerContainer(image).with_network(network).with_network_aliases("kafka")
    publish_on_loopback(container, 9092, port)
    for key, value in kafka_container_env(port, alias="kafka").items():
        container.with_env(key, value)
    return container


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    with Network() as created:
        yield created


@pytest.fixture(scope="module")
def kafka_on_network(network: Network) -> Iterator[tuple[DockerContainer, str]]:
    port = free_port()
    container = kafka_container(kafka_image(), port, network)
    try:
        container.start()
    except Exception as exc:
        pytest.fail(f"{HOW_TO_GET_KAFKA}\n(starting the container failed: {exc})", pytrace=False)
    try:
        bootstrap = f"localhost:{port}"
        wait_for_kafka(bootstrap)
        yield container, bootstrap
    finally:
        container.stop()
