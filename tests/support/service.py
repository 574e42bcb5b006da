"""The service as users run it: `faststream run order_service.app:app` in a subprocess, and its HTTP
endpoints (metrics and health) as a test reads them."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import ports
from tests.support.kafka import unique

FASTSTREAM = str(Path(sys.executable).with_name("faststream"))
ROOT = Path(__file__).parents[2]


def import_seconds() -> float:
    """Seconds a fresh interpreter takes to import the service (and exit): what a start-up timing
    test subtracts, as it swings from 1 s to 8 s while the other half of the suite starts brokers."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import order_service.bootstrap"], check=True)
    return time.monotonic() - started


# The tests' servers (the service's HTTP port, stand-in servers): below Linux's ephemeral range
# (32768-60999), apart from the chaos instances' (21000-21999) and Prometheus's (29100-29199).
TEST_PORTS = range(26000, 28000)


def free_port() -> int:
    """A port for a test's server that nothing listens on now (bench/ports.py)."""
    return ports.free_port(TEST_PORTS, "a test's server")


# For a test that kills or freezes an instance: its partitions move to another member only once its
# session expired (10 s by default). 3 s with a 1 s heartbeat tolerates two missed heartbeats on a
# loaded 2-core machine; the test broker allows sessions from 2.5 s (tests/conftest.py).
SHORT_SESSION = {"consumer__session_timeout_ms": "3000", "consumer__heartbeat_interval_ms": "1000"}


@dataclass
class ServiceTopics:
    input: str = field(default_factory=lambda: unique("orders.created"))
    output: str = field(default_factory=lambda: unique("orders.processed"))
    dead_letter: str = field(default_factory=lambda: unique("orders.dlq"))
    group: str = field(default_factory=lambda: unique("order-service"))


class ServiceProcess:
    """One service instance; start it again after a kill to model a restart."""

    def __init__(self, bootstrap: str, topics: ServiceTopics, **settings: str) -> None:
        self.http_port = free_port()
        self.env = {
            **os.environ,
            # So that a setting can name a test module, e.g. a deliberately flaky processor.
            "PYTHONPATH": str(ROOT),
            "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "ORDER_SERVICE_TOPICS__INPUT": topics.input,
            "ORDER_SERVICE_TOPICS__OUTPUT": topics.output,
            "ORDER_SERVICE_TOPICS__DEAD_LETTER": topics.dead_letter,
            "ORDER_SERVICE_CONSUMER__GROUP_ID": topics.group,
            "ORDER_SERVICE_HTTP__HOST": "127.0.0.1",
            "ORDER_SERVICE_HTTP__PORT": str(self.http_port),
            **{f"ORDER_SERVICE_{k.upper()}": v for k, v in settings.items()},
        }
        self.log = Path(tempfile.mkstemp(prefix="order-service-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None
        self.cwd: Path | None = None  # where a `.env` file would be read from

    def start(self) -> "ServiceProcess":
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [FASTSTREAM, "run", "order_service.app:app"],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


Metrics = dict[str, list[tuple[str, dict[str, str], float]]]


def scrape(port: int) -> Metrics:
    """Metric families by name; empty while the server is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def total(metrics: Metrics, family: str, sample: str, **labels: str) -> float:
    return sum(
        value
        for name, sample_labels, value in metrics.get(family, [])
        if name == sample and all(sample_labels.get(k) == v for k, v in labels.items())
    )


def health(port: int, path: str = "/health/ready") -> tuple[int, dict[str, Any]]:
    """Status and JSON body; (0, {}) while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")
    except OSError:
        return 0, {}


async def ready(instance: ServiceProcess) -> int:
    """/health/ready's status (0 while nothing answers), read off the event loop."""
    status, _ = await asyncio.to_thread(health, instance.http_port)
    return status
