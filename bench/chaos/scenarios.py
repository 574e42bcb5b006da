"""The six chaos scenarios: what each does to the brokers or the instances, and when.

Each is one `inject` coroutine over a `Run`; the harness runs it while orders are produced, so a
scenario holds only its fault and its undoing, not the run around it."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from bench.chaos.kafka.metadata import (
    GROUP_COORDINATOR,
    TRANSACTION_COORDINATOR,
    coordinators,
    most_common,
    under_replicated,
)
from bench.chaos.run_state import Run

BROKER_DOWN_S: Final = 15.0  # scenarios 2, 3 and 6: a killed broker is started again after this
PAUSE_S: Final = 35.0  # scenario 5: longer than replica.lag.time.max.ms (30 s by default)
# The reduced runs of CI (tests/integration/cluster/test_chaos.py) pass these to run_scenario
# instead of a scenario's produce_s and BROKER_DOWN_S: the fault still lands mid-stream (at 10 %
# committed) and the broker is still fenced (9 s) before it comes back. `make chaos` keeps the above.
CI_PRODUCE_S: Final = 25.0
CI_BROKER_DOWN_S: Final = 10.0


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    description: str
    produce_s: float  # how long the orders are spread over: the fault happens within
    inject: Callable[[Run], Awaitable[None]]


TRIGGER_SHARE = 0.10


async def _since_fault(run: Run, seconds: float) -> None:
    """Until `seconds` after the first fault action."""
    await asyncio.sleep(max(0.0, seconds - (run.now() - (run.fault_at or 0.0))))


async def _broker_out(
    run: Run,
    node: int,
    *,
    fault: str,
    down: str = "kill",
    up: str = "start",
    seconds: float | None = None,
    restored: str = "",
) -> None:
    """Broker `node` taken `down` (a `scripts/kafka` action), brought `up` `seconds` after the fault
    (default: the run's broker_down_s)."""
    run.fault(fault)
    await run.broker(down, node)
    await _since_fault(run, run.broker_down_s if seconds is None else seconds)
    await run.broker(up, node)
    run.restored(restored or f"broker {node} serves again")


async def _instance_kills(run: Run) -> None:
    for round_, (share, instance) in enumerate(zip((0.10, 0.35, 0.60), "aba", strict=True), start=1):
        if round_ > 1:  # rounds do not overlap: the group first gets over the previous kill
            await run.wait_moving(timeout=120)
        await run.wait_committed(share)
        target = run.instances["ab".index(instance)]
        run.fault(f"round {round_}: SIGKILL instance {instance}")
        await run.kill_instance(target)
        await run.restart_instance(target)
    run.restored("instance a restarted after the third kill")


async def _leader_broker_kill(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    node = await run.input_leader()
    await _broker_out(run, node, fault=f"SIGKILL broker {node}")


async def _coordinator_kill(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    bootstrap = run.cluster.bootstrap
    group = await coordinators(bootstrap, GROUP_COORDINATOR, [run.group])
    if run.guarantee == "exactly_once":
        txn = await coordinators(bootstrap, TRANSACTION_COORDINATOR, run.transactional_ids())
        node = most_common(txn.values(), prefer=list(group.values()))
        per_partition = [txn[tid] for tid in run.transactional_ids()]
        held = [p for p, n in enumerate(per_partition) if n == node]
        run.event(
            f"transaction coordinator per input partition {per_partition}, group coordinator "
            f"{group[run.group]}: broker {node} coordinates the transactional ids of partitions {held}"
        )
        what = "the transaction coordinator"
    else:
        node = group[run.group]
        run.event(f"group coordinator of {run.group}: broker {node}")
        what = "the group coordinator"
    await _broker_out(run, node, fault=f"SIGKILL broker {node}, {what}")


async def _rolling_restart(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    for node in run.cluster.nodes:
        run.fault(f"rolling restart: SIGTERM broker {node}")
        await run.broker("stop", node)
        await run.broker("start", node)
        # As an operator does: the next broker goes only once every replica is back in sync,
        # or min.insync.replicas=2 would stop writes to partitions that lost two replicas.
        deadline = time.monotonic() + 90
        short: list[str] = ["?"]
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                short = await under_replicated(run.cluster.bootstrap)
                if not short:
                    break
            await asyncio.sleep(1)
        run.event(
            "all replicas in sync"
            if not short
            else f"still under-replicated after 90s: {short[:5]} ({len(short)}); going on"
        )
    run.restored("all three brokers restarted")


async def _pause_broker(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    node = await run.input_leader()
    await _broker_out(
        run,
        node,
        fault=f"SIGSTOP broker {node} for {PAUSE_S:.0f}s",
        down="pause",
        up="resume",
        seconds=PAUSE_S,
        restored=f"broker {node} resumed (SIGCONT)",
    )


async def _broker_and_instance_kill(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    node = await run.input_leader()
    run.fault(f"SIGKILL broker {node} and instance a at the same time")
    await asyncio.gather(run.broker("kill", node), run.kill_instance(run.instances[0]))
    await run.restart_instance(run.instances[0])
    await _since_fault(run, run.broker_down_s)
    await run.broker("start", node)
    run.restored(f"broker {node} serves again, instance a restarted")


SCENARIOS: Final = {
    s.number: s
    for s in (
        Scenario(
            1,
            "service instance SIGKILL x3",
            "three rounds: SIGKILL instance a, b, then a again (at 10 %, 35 % and 60 % of the orders "
            "committed, each round once every partition moves again after the previous one), each "
            "restarted at once",
            50,
            _instance_kills,
        ),
        Scenario(
            2,
            "leader broker SIGKILL",
            f"SIGKILL the broker that leads most input partitions, `start` it again after "
            f"{BROKER_DOWN_S:.0f} s",
            45,
            _leader_broker_kill,
        ),
        Scenario(
            3,
            "coordinator broker SIGKILL",
            "SIGKILL the broker that is the transaction coordinator of most of the service's "
            "transactional ids (exactly-once) or the group coordinator (at-least-once), `start` it "
            f"again after {BROKER_DOWN_S:.0f} s",
            45,
            _coordinator_kill,
        ),
        Scenario(
            4,
            "rolling broker restart",
            "`stop` (SIGTERM, controlled shutdown) then `start` each broker in turn, the next one once "
            "every replica is back in sync",
            150,
            _rolling_restart,
        ),
        Scenario(
            5,
            f"broker SIGSTOP {PAUSE_S:.0f} s",
            f"SIGSTOP the broker that leads most input partitions for {PAUSE_S:.0f} s (longer than "
            "replica.lag.time.max.ms, 30 s), then SIGCONT",
            60,
            _pause_broker,
        ),
        Scenario(
            6,
            "broker + instance SIGKILL",
            "SIGKILL the broker that leads most input partitions and instance a at the same moment; "
            f"the instance is restarted at once, the broker after {BROKER_DOWN_S:.0f} s",
            45,
            _broker_and_instance_kill,
        ),
    )
}
