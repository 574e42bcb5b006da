"""The links between the service instances and the brokers of a chaos run: one Toxiproxy proxy per
broker, in front of the broker's CLIENT listener (`scripts/kafka`'s KAFKA_CLIENT_PORT), listening on
the port that listener advertises. The network scenarios (9-13) put their faults there."""

import sys

from bench.kafka.cluster import LocalCluster
from bench.toxiproxy import LocalToxiproxy, Toxiproxy


def proxy_name(node: int) -> str:
    """The proxy in front of broker `node`."""
    return f"broker-{node}"


def behind_proxies(cluster: LocalCluster, toxiproxy: LocalToxiproxy) -> Toxiproxy:
    """Toxiproxy up (built first if missing), one proxy per broker: the proxy's port, which the broker
    advertises on its CLIENT listener, forwards to that listener. Proxies an earlier run left are
    made again, so that their ports follow this cluster's, and every toxic is removed."""
    if cluster.client_port is None or cluster.advertised_client_port is None:
        raise ValueError(f"{cluster} has no CLIENT listeners to put proxies in front of")
    print(f"chaos: starting {toxiproxy}", file=sys.stderr, flush=True)
    api = toxiproxy.up()
    existing = api.proxies()
    for node in cluster.nodes:
        if proxy_name(node) in existing:
            api.delete_proxy(proxy_name(node))
        api.create_proxy(
            proxy_name(node),
            listen=cluster.advertised_client_port + node - 1,
            upstream=cluster.client_port + node - 1,
        )
    print(
        f"chaos: the service reaches the brokers at {cluster.client_bootstrap}", file=sys.stderr, flush=True
    )
    return api
