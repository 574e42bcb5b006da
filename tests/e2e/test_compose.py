"""The compose stack as shipped: Kafka, then the service once Kafka is healthy; 100 orders through it."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed (types-PyYAML)

from tests.conftest import kafka_image
from tests.e2e.conftest import COMPOSE_FILES, DOCKER, ROOT, docker
from tests.support.kafka import produce, read_all, unique
from tests.support.orders import keys, order_ids, valid_orders
from tests.support.service import free_port
from tests.support.waiting import eventually


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin exists, else `docker-compose` 1.29."""
    if subprocess.run([DOCKER, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [DOCKER, "compose"]
    if legacy := shutil.which("docker-compose"):
        return [legacy]
    pytest.fail(
        "neither `docker compose` nor `docker-compose` is installed (scripts/docker-engine installs it)"
    )


@pytest.fixture
def stack(service_image: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    env = {
        **os.environ,
        # Debian's client first: compose 1.29 shells out to `docker` for builds.
        "PATH": f"{Path(DOCKER).parent}:{os.environ['PATH']}",
        "COMPOSE_PROJECT_NAME": unique("orders-smoke").replace(".", "-"),
        # The compose file has no default for it (the version is in kafka.version).
        "KAFKA_IMAGE": kafka_image(),
        "SERVICE_IMAGE": service_image,
        "KAFKA_HOST_PORT": str(free_port()),
        "SERVICE_HOST_PORT": str(free_port()),
    }
    command = [*compose_command(), *COMPOSE_FILES]
    try:
        yield command, env
    finally:
        subprocess.run([*command, "down", "-v", "--remove-orphans"], env=env, check=False, timeout=180)


async def test_compose_stack_processes_orders(stack: tuple[list[str], dict[str, str]]) -> None:
    command, env = stack
    subprocess.run([*command, "up", "-d", "--no-build"], env=env, check=True, timeout=300)
    service_id = subprocess.run(
        [*command, "ps", "-q", "order-service"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()

    async def health() -> str:
        return docker("inspect", "--format", "{{.State.Health.Status}}", service_id)

    await eventually(health, until=lambda s: s == "healthy", timeout=180, interval=1, what="service healthy")
    bootstrap = f"localhost:{env['KAFKA_HOST_PORT']}"
    orders = valid_orders(100, prefix="compose")
    await produce(bootstrap, "orders.created", orders)
    output = await read_all(bootstrap, "orders.processed", expected=len(orders))
    assert sorted(order_ids(output)) == sorted(keys(orders))
    print(f"compose smoke: {len(output)} orders processed through the stack")


def test_effects_profile_renders_the_stock_processor_and_its_database() -> None:
    """`--profile effects config` only (no engine, no container): order-service-effects is order-service
    with the stock processor and the compose PostgreSQL, started once that is healthy."""
    env = {
        # The file's defaults, not what this shell may set.
        **{k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "SERVICE_", "ORDER_"))},
        "PATH": f"{Path(DOCKER).parent}:{os.environ['PATH']}",
        "KAFKA_IMAGE": kafka_image(),
    }
    done = subprocess.run(
        [*compose_command(), "--file", str(ROOT / "docker-compose.yml"), "--profile", "effects", "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    effects, plain = services["order-service-effects"], services["order-service"]
    postgres = services["postgres"]
    assert effects["environment"] == {
        **plain["environment"],
        "ORDER_SERVICE_PROCESSING__PROCESSOR": "order_service.processors.stock:processor",
        "ORDER_SERVICE_EFFECTS__DATABASE_URL": "postgresql://postgres:postgres@postgres:5432/orders",
    }
    assert effects["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert effects["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert effects["profiles"] == postgres["profiles"] == ["effects"]
    assert "profiles" not in plain
    assert postgres["image"] == "localhost/postgres:15"
    assert postgres["environment"] == {"POSTGRES_PASSWORD": "postgres", "POSTGRES_DB": "orders"}
    assert "pg_isready" in postgres["healthcheck"]["test"]
    # docker-compose 1.29 renders a port as a string, compose v2 as a mapping.
    port = postgres["ports"][0]
    published = f"{port['host_ip']}:{port['published']}" if isinstance(port, dict) else port
    assert published.startswith("127.0.0.1:15432")
