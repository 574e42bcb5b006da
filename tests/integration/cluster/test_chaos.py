"""Broker faults with the service running, as `make chaos` injects them (bench/chaos/scenarios.py),
reduced for CI: 10,000 orders spread over 25 s (`make chaos`: the scenario's 45 s), scenario 2 (SIGKILL
of the broker that leads most input partitions, restarted after 10 s; `make chaos`: 15 s) and
scenario 3 (SIGKILL of the transaction coordinator, or of the group coordinator in at-least-once),
each in both guarantees, two instances in one group. The fault still lands mid-stream (at 10 %
committed) and the killed broker is fenced (after 4 s on the tests' cluster) before it comes back.
And scenario 10, a network fault: the proxy in front of the broker that leads most input partitions
passes no byte for 15 s (`make chaos`: 30 s), longer than the session timeout.

As in `make chaos`, the instances reach the brokers through Toxiproxy (the `network` fixture).

Each run checks with `python -m order_service.cli.verify`: no order lost, no duplicate in exactly-once,
per-partition order kept, and every instance alive and ready at the end without a manual restart.
"""

from pathlib import Path

import pytest
from bench.chaos.harness import run_scenario
from bench.chaos.result import Result
from bench.chaos.scenarios import CI_BROKER_DOWN_S, CI_NETWORK_FAULT_S, CI_PRODUCE_S
from bench.kafka.cluster import LocalCluster
from bench.toxiproxy import Toxiproxy

ORDERS = 10_000


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
@pytest.mark.parametrize("scenario", [2, 3, 10])
async def test_the_service_rides_out_a_fault(
    kafka_cluster: LocalCluster, network: Toxiproxy, scenario: int, guarantee: str, tmp_path: Path
) -> None:
    kafka_cluster.ensure_all_running()
    try:
        result = await run_scenario(
            kafka_cluster,
            scenario,
            guarantee,
            orders_count=ORDERS,
            evidence=tmp_path,
            deadline_s=600,
            produce_s=CI_PRODUCE_S,
            broker_down_s=CI_BROKER_DOWN_S,
            network=network,
            network_fault_s=CI_NETWORK_FAULT_S,
        )
    finally:
        network.reset()
        kafka_cluster.ensure_all_running()
    print(result.summary(), *(f"+{at:6.1f}s {text}" for at, text in result.events), sep="\n")
    check(result, guarantee)


def check(result: Result, guarantee: str) -> None:
    assert result.error is None, f"{result.error} (evidence in {result.evidence})"
    assert result.fault_at_s is not None, "the fault never happened"
    assert result.inputs is not None, result.summary()
    assert result.inputs >= ORDERS, result.summary()
    assert result.lost == 0, f"{result.lost} orders lost (evidence in {result.evidence})"
    if guarantee == "exactly_once":
        assert result.duplicates == 0, f"{result.duplicates} duplicates (evidence in {result.evidence})"
    assert result.order_violations == 0, f"order violations (evidence in {result.evidence})"
    assert result.unmatched == 0, f"unmatched outcomes (evidence in {result.evidence})"
    assert result.drained, "the group did not commit the whole input"
    assert result.restarts_needed == 0, f"manual restarts: {result.restart_reasons}"
    assert result.passed, result.failures()
