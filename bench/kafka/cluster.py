"""A local multi-node Kafka: `scripts/kafka` driven from Python, one node at a time.

`make chaos` (bench/chaos/) and the integration tests both run it; it lives in bench because
the bench must run without the tests, while tests may import the bench.

Every call runs the script with the cluster's ports and run dir in its environment and a
timeout; a failure raises `ClusterError` with the script's own messages.
"""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from bench.scripts import run_script

SCRIPT: Final = Path(__file__).resolve().parents[2] / "scripts" / "kafka"
_STATUS_LINE: Final = re.compile(r"^node(\d+): (running|paused|stopped)\b")
# Linux hands out ephemeral (client) ports from this range: a broker there can collide with a
# connection of anything else on the machine.
_EPHEMERAL: Final = range(32768, 61000)


class ClusterError(RuntimeError):
    """A `scripts/kafka` command failed or did not finish in time."""


class LocalCluster:
    """`brokers` combined broker+controller nodes; node i listens on port+i-1 and controller_port+i-1.

    Nodes are numbered from 1, as in the script. `up_timeout` bounds the script's waits for
    nodes to serve (KAFKA_UP_TIMEOUT), `stop_timeout` a SIGTERMed node's shutdown before it is
    killed (KAFKA_STOP_TIMEOUT); each command gets these plus a margin before it is killed.
    `broker_config` is written last into each node's config when the cluster is made
    (KAFKA_EXTRA_CONFIG); a cluster in `run_dir` made with other values is wiped by `up`.

    `client_port` and `advertised_client_port` (both or neither) give each node a second
    listener on client_port+i-1 that advertises advertised_client_port+i-1: where a proxy in
    front of node i listens (make chaos's Toxiproxy). A client bootstrapped at
    `client_bootstrap` then learns only the proxies' addresses, so every one of its connections
    crosses a proxy; `bootstrap` stays direct, for whatever aims a fault or checks its outcome.
    """

    def __init__(
        self,
        *,
        brokers: int,
        port: int,
        controller_port: int,
        run_dir: Path,
        up_timeout: float = 120.0,
        stop_timeout: float = 20.0,
        script: Path = SCRIPT,
        broker_config: Mapping[str, str] | None = None,
        client_port: int | None = None,
        advertised_client_port: int | None = None,
    ) -> None:
        if brokers < 1:
            raise ValueError(f"brokers must be at least 1, not {brokers}")
        if (client_port is None) != (advertised_client_port is None):
            raise ValueError("give both client_port and advertised_client_port, or neither")
        firsts = [port, controller_port, *(p for p in (client_port, advertised_client_port) if p is not None)]
        ranges = [range(first, first + brokers) for first in firsts]
        for ports in ranges:
            if ports.start < 1024 or ports.stop > 65536 or _overlap(ports, _EPHEMERAL):
                raise ValueError(f"ports {ports.start}-{ports.stop - 1} are privileged or ephemeral ones")
        if any(_overlap(a, b) for i, a in enumerate(ranges) for b in ranges[i + 1 :]):
            raise ValueError("broker, controller and client ports overlap")
        self.brokers: Final = brokers
        self.port: Final = port
        self.controller_port: Final = controller_port
        self.run_dir: Final = run_dir
        self.up_timeout: Final = up_timeout
        self.stop_timeout: Final = stop_timeout
        self.script: Final = script
        self.broker_config: Final = dict(broker_config or {})
        self.client_port: Final = client_port
        self.advertised_client_port: Final = advertised_client_port
        self.bootstrap: Final = ",".join(self.address(node) for node in self.nodes)
        first = advertised_client_port
        self.client_bootstrap: Final = (
            ",".join(f"127.0.0.1:{first + node - 1}" for node in self.nodes) if first else self.bootstrap
        )
        # A node resumed by this object runs again, but may not be registered and unfenced yet:
        # until the next `up`, `ensure_all_running` does not take "running" for "serving".
        self._resumed = False

    def __repr__(self) -> str:
        return f"LocalCluster({self.brokers} nodes at {self.bootstrap}, run dir {self.run_dir})"

    @property
    def nodes(self) -> range:
        return range(1, self.brokers + 1)

    def address(self, node: int) -> str:
        self._check(node)
        return f"127.0.0.1:{self.port + node - 1}"

    def up(self) -> None:
        """Start the cluster, or its stopped nodes and paused ones (data kept); wait until all serve."""
        self._run("up", "--brokers", str(self.brokers), timeout=self._long)
        self._resumed = False

    def down(self) -> None:
        """Kill every node and delete the data."""
        self._run("down", timeout=self._short)

    def start(self, node: int) -> None:
        """Start a stopped node on its config and data; return once it serves and is registered."""
        self._run("start", str(self._check(node)), timeout=self._long)

    def stop(self, node: int) -> None:
        """SIGTERM (controlled shutdown); SIGKILL if it is not gone within `stop_timeout`."""
        self._run("stop", str(self._check(node)), timeout=self.stop_timeout + self._short)

    def kill(self, node: int) -> None:
        """SIGKILL; return once the process is gone."""
        self._run("kill", str(self._check(node)), timeout=self._short)

    def pause(self, node: int) -> None:
        """SIGSTOP: the process and its sockets stay, it answers nothing."""
        self._run("pause", str(self._check(node)), timeout=self._short)

    def resume(self, node: int) -> None:
        """SIGCONT; does not wait for the node to catch up or be unfenced again."""
        self._resumed = True
        self._run("resume", str(self._check(node)), timeout=self._short)

    def status(self) -> dict[int, str]:
        """Node -> "running", "paused" or "stopped"; empty when there is no cluster."""
        # The script exits 1 when some node is not running: still a valid answer.
        out = self._run("status", timeout=self._short, ok=(0, 1))
        states: dict[int, str] = {}
        for line in out.splitlines():
            if match := _STATUS_LINE.match(line):
                states[int(match[1])] = match[2]
        if not states and not out.startswith("not running"):
            raise ClusterError(f"cannot read `scripts/kafka status`: {out!r}")
        return states

    def ensure_all_running(self) -> None:
        """Resume paused nodes and start stopped ones, keeping the data; return once all serve.

        That is what `scripts/kafka up` does with an existing cluster of this size (it starts the
        missing nodes together and waits until every broker is registered, which a node resumed
        after a long pause may not be yet); with no cluster, or a broken one, it starts afresh.

        `up` checks the brokers with a JVM tool (a second or more of CPU), so it runs only when
        needed: when `status` (no JVM) shows a node not running, or a node was resumed since the
        last `up`. A node that `start` brought back has already been checked to serve.
        """
        if not self._resumed and self.status() == dict.fromkeys(self.nodes, "running"):
            return
        self.up()

    @property
    def _long(self) -> float:
        # Possibly a wait for another command's lock, then the script's own bounded waits.
        return 2 * self.up_timeout + self.stop_timeout + 90

    @property
    def _short(self) -> float:
        return 60.0

    def _check(self, node: int) -> int:
        if node not in self.nodes:
            raise ValueError(f"no node {node}: the cluster has nodes 1..{self.brokers}")
        return node

    def _run(self, *args: str, timeout: float, ok: tuple[int, ...] = (0,)) -> str:
        env = {
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_RUN_DIR": str(self.run_dir),
            "KAFKA_UP_TIMEOUT": str(round(self.up_timeout)),
            "KAFKA_STOP_TIMEOUT": str(round(self.stop_timeout)),
            "KAFKA_EXTRA_CONFIG": " ".join(f"{key}={value}" for key, value in self.broker_config.items()),
            "KAFKA_CLIENT_PORT": str(self.client_port or ""),
            "KAFKA_ADVERTISED_CLIENT_PORT": str(self.advertised_client_port or ""),
        }
        return run_script(self.script, *args, env=env, timeout=timeout, error=ClusterError, ok=ok).stdout


def _overlap(a: range, b: range) -> bool:
    return a.start < b.stop and b.start < a.stop
