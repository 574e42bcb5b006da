"""Session fixtures: a real Kafka broker for integration tests, never a silent skip; a real PostgreSQL."""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from bench.postgres import PostgresError

from tests.support import postgres
from tests.support.service import free_port

ROOT = Path(__file__).parents[1]
KAFKA_VERSION = (ROOT / "kafka.version").read_text().strip()
DEFAULT_IMAGE = f"apache/kafka:{KAFKA_VERSION}"
# The broker settings every local Kafka of the project shares (compose, scripts/kafka, the image).
KRAFT_ENV = ROOT / "docker" / "kafka" / "kraft.env"
HOW_TO_GET_KAFKA = (
    "integration tests need Kafka: start a Docker engine (scripts/docker-engine) so testcontainers can "
    f'run KAFKA_IMAGE (default {DEFAULT_IMAGE}; `eval "$(scripts/images)"` sets it, building '
    "localhost/kafka where no registry is reachable), "
    "or run `scripts/kafka up` and set KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092"
)
logger = logging.getLogger("tests.kafka")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path:
            item.add_marker(pytest.mark.integration)
        if "/e2e/" in path:
            item.add_marker(pytest.mark.e2e)


async def _metadata_ok(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def wait_for_kafka(bootstrap: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not asyncio.run(_metadata_ok(bootstrap)):
        if time.monotonic() > deadline:
            pytest.fail(f"Kafka at {bootstrap} did not answer a metadata request within {timeout}s")
        time.sleep(0.5)


def kafka_image() -> str:
    """The broker image of the containers: KAFKA_IMAGE (`make test` sets it), else the official one."""
    return os.environ.get("KAFKA_IMAGE", DEFAULT_IMAGE)


def kraft_settings() -> dict[str, str]:
    """docker/kafka/kraft.env: KEY=VALUE lines, read as compose's `env_file:` reads them."""
    settings = {}
    for line in map(str.strip, KRAFT_ENV.read_text().splitlines()):
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


def kafka_container_env(host_port: int, alias: str) -> dict[str, str]:
    """Single-node KRaft settings, as the official apache/kafka image reads them from the environment:
    the shared ones of docker/kafka/kraft.env and this container's node id and listeners.

    `alias` must resolve to the container inside it too: the broker reaches itself on the
    DOCKER listener (transaction markers and their verification go through it).
    """
    return {
        **kraft_settings(),
        "KAFKA_NODE_ID": "1",
        "KAFKA_LISTENERS": "HOST://0.0.0.0:9092,DOCKER://0.0.0.0:19092,CONTROLLER://0.0.0.0:9093",
        # The host reaches the broker through the port published on 127.0.0.1, containers by alias.
        "KAFKA_ADVERTISED_LISTENERS": f"HOST://localhost:{host_port},DOCKER://{alias}:19092",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "HOST:PLAINTEXT,DOCKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "DOCKER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        # Tests that kill or freeze an instance give it a short session (SHORT_SESSION in
        # tests/support/service.py), so that its partitions move in seconds, not after the
        # default 10 s. The broker's floor (6 s by default) must allow it; only here, in the test
        # containers: compose and scripts/kafka keep Kafka's default.
        "KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS": "2500",
    }


def announce(config: pytest.Config, message: str, tag: str = "kafka") -> None:
    """A line in the test output even when the test passes: which Kafka (or PostgreSQL) the run uses
    matters."""
    logger.info(message)
    capture = config.pluginmanager.get_plugin("capturemanager")
    assert capture is not None
    with capture.global_and_fixture_disabled():
        print(f"\n[{tag}] {message}", flush=True)


@pytest.fixture(scope="session")
def kafka(pytestconfig: pytest.Config) -> Iterator[str]:
    """Bootstrap address of a real broker: KAFKA_BOOTSTRAP_SERVERS, or a testcontainers Kafka."""
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        announce(pytestconfig, f"using the Kafka broker at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
        wait_for_kafka(bootstrap)
        yield bootstrap
        return
    try:
        from testcontainers.core.container import DockerContainer

        from tests.support.containers import publish_on_loopback

        image = kafka_image()
        port = free_port()
        container = publish_on_loopback(DockerContainer(image), 9092, port)
        for key, value in kafka_container_env(port, alias="localhost").items():
            container.with_env(key, value)
        announce(pytestconfig, f"starting Kafka container from {image}, published on 127.0.0.1:{port}")
        container.start()
    except Exception as exc:
        pytest.fail(f"{HOW_TO_GET_KAFKA}\n(starting the container failed: {exc})", pytrace=False)
    bootstrap = f"localhost:{port}"
    try:
        wait_for_kafka(bootstrap)
        short_id = container.get_wrapped_container().short_id
        announce(pytestconfig, f"Kafka container {short_id} ready at {bootstrap}")
        yield bootstrap
    finally:
        container.stop()


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of the `orders` database on a real PostgreSQL: POSTGRES_URL, or `scripts/postgres up` on
    127.0.0.1:25432 with its data in .cache/postgres-test (tests/support/postgres.py), taken down
    after the session."""
    if url := postgres.external_url():
        announce(pytestconfig, f"using the PostgreSQL at {postgres.redacted(url)} (POSTGRES_URL)", "postgres")
    else:
        where = f"127.0.0.1:{postgres.PORT} (scripts/postgres, {postgres.RUN_DIR})"
        announce(pytestconfig, f"PostgreSQL at {where}", "postgres")
    try:
        with postgres.server_session() as url:
            yield url
    except PostgresError as exc:
        pytest.fail(f"the test PostgreSQL: {exc}", pytrace=False)


@pytest.fixture
async def database_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh empty database on the `postgres_server`, dropped after the test: its URL."""
    name = postgres.unique_database()
    url = await postgres.create_database(postgres_server, name)
    try:
        yield url
    finally:
        await postgres.drop_database(postgres_server, name)
