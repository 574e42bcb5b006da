from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from bench.chaos.network import behind_proxies
from bench.kafka.cluster import ClusterError, LocalCluster
from bench.toxiproxy import LocalToxiproxy, Toxiproxy, ToxiproxyError

from tests.conftest import announce
from tests.support.servers import serving

# The controller fences a broker that stopped heartbeating after broker.session.timeout.ms
# (9 s by default, as in `make chaos` and compose). Here that wait only delays the tests that
# kill a broker (acks=all writes stall until the dead replica leaves the ISR): 4 s, heartbeats
# every 0.5 s, still far above a heartbeat's delay on a loaded machine.
BROKER_CONFIG: Final = {"broker.session.timeout.ms": "4000", "broker.heartbeat.interval.ms": "500"}
FENCED_AFTER_S: Final = 4.0
# Each node's second listener (CLIENT, 19592-19594) is advertised at its proxy's port (19692-19694):
# a client bootstrapped there (the chaos tests' service instances) crosses Toxiproxy (API on 19474).
CLIENT_PORT: Final = 19592
PROXY_PORT: Final = 19692
TOXIPROXY_PORT: Final = 19474


@pytest.fixture(scope="package")
def kafka_cluster(pytestconfig: pytest.Config) -> Iterator[LocalCluster]:
    """A local 3-node Kafka (`scripts/kafka`, brokers on 127.0.0.1:19392-19394), for tests that
    stop, kill or pause brokers; separate from the `kafka` broker.

    `up` once for this package (a cluster left in `.cache/test-cluster` by an interrupted run is
    reused, its data kept), `down` after its last test (data deleted), so that the three nodes do
    not idle through the rest of the suite. Nodes are not restored between tests: a test that needs
    every node serving calls `kafka_cluster.ensure_all_running()` first, and one that stops, kills
    or pauses nodes restores them in a `finally`.
    """
    run_dir = Path(__file__).resolve().parents[3] / ".cache" / "test-cluster"
    cluster = LocalCluster(
        brokers=3,
        port=19392,
        controller_port=19492,
        run_dir=run_dir,
        broker_config=BROKER_CONFIG,
        client_port=CLIENT_PORT,
        advertised_client_port=PROXY_PORT,
    )
    announce(
        pytestconfig,
        f"using the local 3-node Kafka cluster at {cluster.bootstrap} (scripts/kafka, {run_dir})",
    )
    leftover = cluster.run_dir.exists()

    def up() -> LocalCluster:
        try:
            cluster.up()
        except ClusterError:
            if not leftover:
                raise
            # What an interrupted run left may not come back: start over once.
            cluster.down()
            cluster.up()
        return cluster

    with serving(up, cluster.down, ClusterError, "the local Kafka cluster did not start") as started:
        yield started


@pytest.fixture(scope="package")
def network(kafka_cluster: LocalCluster) -> Iterator[Toxiproxy]:
    """Toxiproxy in front of each node of `kafka_cluster` (`scripts/toxiproxy`, API on
    127.0.0.1:19474, run dir .cache/test-toxiproxy), as `make chaos` has it; down after the package."""
    run_dir = Path(__file__).resolve().parents[3] / ".cache" / "test-toxiproxy"
    toxiproxy = LocalToxiproxy(port=TOXIPROXY_PORT, run_dir=run_dir)
    start = lambda: behind_proxies(kafka_cluster, toxiproxy)  # noqa: E731
    with serving(start, toxiproxy.down, ToxiproxyError, "Toxiproxy did not start") as api:
        yield api
