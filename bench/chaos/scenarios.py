"""The chaos scenarios: what each does to the brokers, the instances, the database or the network
between the instances and the brokers, and when.

Each is one `inject` coroutine over a `Run`; the harness runs it while orders are produced, so a
scenario holds only its fault and its undoing, not the run around it."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from bench.chaos.effects import inbox_beyond, when_committing
from bench.chaos.kafka.metadata import (
    GROUP_COORDINATOR,
    TRANSACTION_COORDINATOR,
    coordinators,
    most_common,
    under_replicated,
)
from bench.chaos.run_state import Run
from bench.toxiproxy import Toxic, bandwidth, latency, reset_peer, timeout

BROKER_DOWN_S: Final = 15.0  # scenarios 2, 3 and 6: a killed broker is started again after this
PAUSE_S: Final = 35.0  # scenario 5: longer than replica.lag.time.max.ms (30 s by default)
DATABASE_DOWN_S: Final = 12.0  # scenario 7: a killed PostgreSQL is started again after this
# Scenario 8: how long to look for an instance's COMMIT before killing one in an open transaction.
COMMIT_WATCH_S: Final = 10.0
# The reduced runs of CI (tests/integration/cluster/test_chaos.py) pass these to run_scenario
# instead of a scenario's produce_s and BROKER_DOWN_S: the fault still lands mid-stream (at 10 %
# committed) and the broker is still fenced (9 s) before it comes back. `make chaos` keeps the above.
CI_PRODUCE_S: Final = 25.0
CI_BROKER_DOWN_S: Final = 10.0
CI_DATABASE_DOWN_S: Final = 8.0
# Scenarios 9-13 (issue 27): how long a network fault lasts; CI's reduced blackhole is shorter, still
# longer than the session timeout (10 s), so that the coordinator's blackhole expels a member.
NETWORK_FAULT_S: Final = 30.0
CI_NETWORK_FAULT_S: Final = 15.0
LATENCY_MS: Final = 200
JITTER_MS: Final = 50
RESET_EVERY_S: Final = 3.0  # scenario 12: a pulse of connection resets this often
RESET_WINDOW_S: Final = 0.5  # each pulse resets every connection that sends within it
THROTTLE_KB_S: Final = 100
# At most this many WARNING-or-worse service log lines per instance per network fault (the
# dead-lettering of the malformed 1 % aside): a fault must be told, not flooded.
LOG_LINES_PER_FAULT: Final = 50


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    description: str
    produce_s: float  # how long the orders are spread over: the fault happens within
    inject: Callable[[Run], Awaitable[None]]
    # Runs the stock processor with its effects in PostgreSQL (bench/chaos/effects.py), checked
    # with SQL after the run.
    effects: bool = False
    # Acts on the links through the brokers' proxies (Toxiproxy): needs them, and is held to
    # LOG_LINES_PER_FAULT.
    network: bool = False


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
    node, what = await _coordinator(run)
    await _broker_out(run, node, fault=f"SIGKILL broker {node}, {what}")


async def _coordinator(run: Run) -> tuple[int, str]:
    """The broker that is the transaction coordinator of most of the service's transactional ids
    (exactly-once), or the group coordinator (at-least-once); what it is."""
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
    return node, what


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


async def _database_kill(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    run.fault("SIGKILL PostgreSQL (scripts/postgres kill: the postmaster and every backend at once)")
    await run.database("kill")
    await asyncio.sleep(min(3.0, run.database_down_s / 2))
    for instance in run.instances:  # what an operator sees meanwhile
        status, body = await instance.ready_answer()
        run.event(f"instance {instance.name} /health/ready: {status} {' '.join(body.split())[:200]}")
    await _since_fault(run, run.database_down_s)
    await run.database("start")
    run.restored("PostgreSQL serves again (after crash recovery)")


async def _instance_kills_mid_commit(run: Run) -> None:
    assert run.database_url is not None
    for round_, (share, preferred) in enumerate(zip((0.10, 0.35, 0.60), "aba", strict=True), start=1):
        if round_ > 1:  # rounds do not overlap: the group first gets over the previous kill
            await run.wait_moving(timeout=120)
        await run.wait_committed(share)
        by_name = {run.application_name(i): i for i in run.instances if i.alive}
        prefer = run.application_name(run.instances["ab".index(preferred)])
        killed, seen = await when_committing(
            run.database_url,
            {name: instance.signal_kill for name, instance in by_name.items()},
            prefer,
            timeout=COMMIT_WATCH_S,
        )
        target = by_name[killed]
        run.fault(f"round {round_}: SIGKILL instance {target.name} {seen}")
        await run.kill_instance(target)
        with contextlib.suppress(Exception):  # the timeline's, not a check
            offsets = await run.progress.sample()
            if offsets is not None:
                beyond = await inbox_beyond(
                    run.database_url, group=run.group, input_topic=run.input, committed=offsets.committed
                )
                run.event(
                    f"{beyond} inbox rows past the group's committed offsets (effects committed, "
                    "offsets not: read again, they publish the stored outcome)"
                )
        await run.restart_instance(target)
    run.restored("the instance of the third kill restarted")


async def _network_fault(run: Run, nodes: list[int], toxics: list[Toxic], what: str) -> None:
    """`toxics` on the proxies of `nodes` for the run's network_fault_s, then removed."""
    run.fault(f"{what} for {run.network_fault_s:.0f}s")
    await run.toxics(nodes, toxics)
    await _since_fault(run, run.network_fault_s)
    await run.clear_toxics(nodes, toxics)
    run.restored(f"toxics removed from the proxies of brokers {nodes}")


def _blackhole() -> list[Toxic]:
    # Both directions: nothing the client sends arrives, nothing the broker answers comes back.
    # Connections stay open (timeout 0) and new ones are accepted by the proxy: only a request's
    # timeout can notice. Removing the toxic closes the connections it held (Toxiproxy's cleanup).
    return [timeout(0, stream="upstream"), timeout(0, stream="downstream")]


async def _leader_latency(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    node = await run.input_leader()
    toxic = latency(LATENCY_MS, jitter_ms=JITTER_MS)
    await _network_fault(run, [node], [toxic], f"{LATENCY_MS} ± {JITTER_MS} ms to broker {node}")


async def _leader_blackhole(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    node = await run.input_leader()
    await _network_fault(run, [node], _blackhole(), f"blackhole to broker {node}")


async def _coordinator_blackhole(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    node, what = await _coordinator(run)
    await _network_fault(run, [node], _blackhole(), f"blackhole to broker {node}, {what}")


async def _resets(run: Run) -> None:
    """Pulses: every RESET_EVERY_S a `reset_peer` toxic with no delay sits on every proxy for
    RESET_WINDOW_S, so each connection that sends anything then is reset, and the links work in
    between. A standing `reset_peer` with a delay would not do: Toxiproxy holds the first chunk of
    a connection for the delay and then resets it, so no request would ever get through."""
    await run.wait_committed(TRIGGER_SHARE)
    nodes = list(run.cluster.nodes)
    toxics = [reset_peer(0, stream="upstream")]
    run.fault(
        f"connection resets every {RESET_EVERY_S:.0f}s on the proxies of brokers {nodes} for "
        f"{run.network_fault_s:.0f}s"
    )
    assert run.fault_at is not None
    pulses = 0
    while run.now() - run.fault_at < run.network_fault_s:
        await run.toxics(nodes, toxics, quiet=pulses > 0)
        await asyncio.sleep(RESET_WINDOW_S)
        await run.clear_toxics(nodes, toxics)
        pulses += 1
        await asyncio.sleep(
            max(0.0, min(RESET_EVERY_S - RESET_WINDOW_S, run.fault_at + run.network_fault_s - run.now()))
        )
    run.restored(f"{pulses} pulses of resets done")


async def _throttle(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    node = await run.input_leader()
    toxics = [bandwidth(THROTTLE_KB_S, stream="upstream"), bandwidth(THROTTLE_KB_S, stream="downstream")]
    await _network_fault(run, [node], toxics, f"{THROTTLE_KB_S} KB/s link to broker {node}")


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
        Scenario(
            7,
            "PostgreSQL SIGKILL",
            "with the stock processor's effects in PostgreSQL: SIGKILL the database server "
            f"(`scripts/postgres kill`), `start` it again after {DATABASE_DOWN_S:.0f} s (crash recovery)",
            45,
            _database_kill,
            effects=True,
        ),
        Scenario(
            8,
            "instance SIGKILL mid-commit x3",
            "with the stock processor's effects in PostgreSQL: three rounds (at 10 %, 35 % and 60 % "
            "committed, each once every partition moves again, as in 1): SIGKILL an instance the moment "
            "one of its database backends runs COMMIT (pg_stat_activity polled every millisecond or so; "
            "a, b, a preferred, else whichever commits first), restarted at once",
            50,
            _instance_kills_mid_commit,
            effects=True,
        ),
        Scenario(
            9,
            f"{LATENCY_MS} ms latency to the leader",
            f"through the proxy of the broker that leads most input partitions, every chunk of its "
            f"answers is held {LATENCY_MS} ± {JITTER_MS} ms (Toxiproxy `latency`) for "
            f"{NETWORK_FAULT_S:.0f} s",
            60,
            _leader_latency,
            network=True,
        ),
        Scenario(
            10,
            "blackhole to the leader",
            "the proxy of the broker that leads most input partitions passes no byte either way for "
            f"{NETWORK_FAULT_S:.0f} s (Toxiproxy `timeout` 0 on both streams): connections stay open, "
            "new ones are accepted, nothing answers; the brokers still reach each other",
            60,
            _leader_blackhole,
            network=True,
        ),
        Scenario(
            11,
            "blackhole to the coordinator",
            "as 10, to the broker that is the transaction coordinator of most of the service's "
            "transactional ids (exactly-once) or the group coordinator (at-least-once)",
            60,
            _coordinator_blackhole,
            network=True,
        ),
        Scenario(
            12,
            "connection resets, every broker",
            f"every {RESET_EVERY_S:.0f} s for {NETWORK_FAULT_S:.0f} s, each connection through any broker's "
            f"proxy that sends data within {RESET_WINDOW_S} s is reset (TCP RST; Toxiproxy `reset_peer`), "
            "the links work in between",
            60,
            _resets,
            network=True,
        ),
        Scenario(
            13,
            f"{THROTTLE_KB_S} KB/s link to the leader",
            f"the proxy of the broker that leads most input partitions passes at most {THROTTLE_KB_S} KB/s "
            f"per connection and direction for {NETWORK_FAULT_S:.0f} s (Toxiproxy `bandwidth`)",
            60,
            _throttle,
            network=True,
        ),
    )
}
