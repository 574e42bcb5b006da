"""The chaos scenarios and the harness that runs one of them in one delivery guarantee.

`run_scenario` is what `make chaos` (bench/chaos/) runs for each row of docs/reliability.md, and
what tests/integration/test_chaos.py runs in CI: fresh topics and group, two service instances in
one group, orders produced at an even pace while the fault happens, then the checks.

A run, step by step (every step has a deadline, and so has the whole run):

1. create the input topic (6 partitions, RF 3, min.insync.replicas 2), start instances a and b
   (the service creates its output and dead-letter topics with RF 3) and wait until both are ready;
2. start the paced producer (bench/chaos/producer.py, a process of its own) and the monitor (the
   group's committed and the input's end offsets every 0.5 s, each live instance's /health/ready
   every second);
3. inject the fault once the group has committed a share of the input, then undo it as the
   scenario says (restart the killed broker or instance, resume the paused broker);
4. wait until every order is acknowledged and the group's committed offsets equal the end offsets;
5. check that every instance that is meant to run is alive and ready. One that died on its own, is
   not ready, or a group that does not drain, gets a *manual* restart: counted, and a failure;
6. stop the instances (SIGTERM) and run the verify command (`python -m order_service.cli.verify
   --json`) with their settings.
"""

import asyncio
import contextlib
import importlib.util
import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from bench.chaos.kafka_io import (
    GROUP_COORDINATOR,
    PARTITIONS,
    TRANSACTION_COORDINATOR,
    Offsets,
    Progress,
    coordinators,
    create_input_topic,
    leaders,
    most_common,
    reconcile_by_key,
    under_replicated,
)
from bench.chaos.producer import ProducerProcess
from bench.chaos.service import Instance, log_tail, service_env

GUARANTEES: Final = ("at_least_once", "exactly_once")
BROKER_DOWN_S: Final = 15.0  # scenarios 2, 3 and 6: a killed broker is started again after this
PAUSE_S: Final = 35.0  # scenario 5: longer than replica.lag.time.max.ms (30 s by default)
SAMPLE_EVERY_S: Final = 0.5
CAUGHT_UP_S: Final = 5.0  # recovered: nothing older than this uncommitted, every instance ready
READY_TIMEOUT_S: Final = 120.0
FINAL_READY_TIMEOUT_S: Final = 45.0
VERIFY_TIMEOUT_S: Final = 600.0
VERIFY_MODULES: Final = ("order_service.cli.verify", "order_service.verify")


class Cluster(Protocol):
    """What a scenario does to the brokers (bench.kafka.cluster.LocalCluster). Node i is broker id i."""

    @property
    def bootstrap(self) -> str: ...
    @property
    def nodes(self) -> range: ...
    def kill(self, node: int) -> None: ...
    def start(self, node: int) -> None: ...
    def stop(self, node: int) -> None: ...
    def pause(self, node: int) -> None: ...
    def resume(self, node: int) -> None: ...
    def ensure_all_running(self) -> None: ...
    def status(self) -> dict[int, str]: ...


# --- what a run measures -----------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the run's start
    offsets: Offsets | None
    produced: int = 0  # orders acknowledged to the producer so far


@dataclass
class Result:
    scenario: int
    title: str
    guarantee: str
    orders: int
    evidence: str
    produced: int = 0
    resent: int = 0
    producer_errors: dict[str, int] = field(default_factory=dict)
    inputs: int | None = None
    processed: int | None = None
    dead_lettered: int | None = None
    outcome_records: int | None = None
    lost: int | None = None
    duplicates: int | None = None
    order_violations: int | None = None
    unmatched: int | None = None
    checked_by: str = ""
    verify_result: str | None = None
    longest_stall_s: float | None = None
    recovery_s: float | None = None
    recovery_after_last_s: float | None = None  # from the last fault action (several-step scenarios)
    restarts_needed: int = 0
    restart_reasons: list[str] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)
    drained: bool = False
    events: list[tuple[float, str]] = field(default_factory=list)
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def exactly_once(self) -> bool:
        return self.guarantee == "exactly_once"

    def failures(self) -> list[str]:
        """Why this row fails the pass criteria; empty when it passes."""
        found = []
        if self.error:
            found.append(f"harness: {self.error}")
        if self.lost is None:
            found.append("not verified")
        else:
            if self.lost:
                found.append(f"{self.lost} lost")
            if self.exactly_once and self.duplicates:
                found.append(f"{self.duplicates} duplicates in exactly-once")
            if self.order_violations:
                found.append(f"{self.order_violations} order violations")
            if self.unmatched:
                found.append(f"{self.unmatched} unmatched outcomes")
        if self.restarts_needed:
            found.append(f"{self.restarts_needed} manual restart(s): {'; '.join(self.restart_reasons)}")
        if not self.drained:
            found.append("the group did not commit the whole input")
        return found

    @property
    def passed(self) -> bool:
        return not self.failures()

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.failures())
        return (
            f"scenario {self.scenario} ({self.title}), {self.guarantee}: inputs {self.inputs}, "
            f"outcomes {self.outcome_records}, lost {self.lost}, duplicates {self.duplicates}, "
            f"order violations {self.order_violations}, longest stall {_s(self.longest_stall_s)}, "
            f"recovery {_s(self.recovery_s)}, restarts needed {self.restarts_needed}, "
            f"{self.elapsed_s:.0f}s -> {verdict}"
        )


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}s"


# --- one run -------------------------------------------------------------------------------------------


class Run:
    """The state of one run that the scenarios act on."""

    def __init__(self, cluster: Cluster, guarantee: str, orders: int, evidence: Path, label: str) -> None:
        self.cluster = cluster
        self.guarantee = guarantee
        self.orders = orders
        self.evidence = evidence
        base = f"chaos-{label}-{uuid.uuid4().hex[:8]}"
        self.input, self.output, self.dead_letter, self.group = (
            f"{base}.in",
            f"{base}.out",
            f"{base}.dlq",
            base,
        )
        self.env = service_env(
            bootstrap=cluster.bootstrap,
            input_topic=self.input,
            output=self.output,
            dead_letter=self.dead_letter,
            group=self.group,
            guarantee=guarantee,
            replication_factor=3,
        )
        self.instances = [Instance(name, self.env, evidence / f"service-{name}.log") for name in ("a", "b")]
        self.progress = Progress(cluster.bootstrap, self.input, self.group)
        self.started = time.monotonic()
        self.events: list[tuple[float, str]] = []
        self.samples: list[Sample] = []
        self.readiness: list[tuple[float, dict[str, int]]] = []
        self.fault_at: float | None = None  # the first fault action
        self.last_fault_at: float | None = None
        self.restored_at: float | None = None
        self.unexpected_exits: list[str] = []
        self.producer: ProducerProcess | None = None

    def sample(self, offsets: Offsets | None) -> None:
        produced = 0 if self.producer is None else self.producer.production.acked
        self.samples.append(Sample(self.now(), offsets, produced))

    def now(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def event(self, text: str) -> None:
        at = self.now()
        self.events.append((at, text))
        print(f"  [{self.group} +{at:6.1f}s] {text}", file=sys.stderr, flush=True)

    def fault(self, text: str) -> None:
        self.last_fault_at = self.now()
        if self.fault_at is None:
            self.fault_at = self.last_fault_at
        self.event(f"FAULT: {text}")

    def restored(self, text: str) -> None:
        self.restored_at = self.now()
        self.event(f"restored: {text}")

    # --- acting on the cluster and the instances, without blocking the event loop ---

    async def broker(self, action: str, node: int) -> None:
        call: Callable[[int], None] = getattr(self.cluster, action)
        started = time.monotonic()
        try:
            await asyncio.to_thread(call, node)
        except Exception as exc:  # each action is idempotent: once more, then give up
            self.event(f"scripts/kafka {action} {node} failed, once more: {' '.join(str(exc).split())[:300]}")
            await asyncio.sleep(2)
            await asyncio.to_thread(call, node)
        self.event(f"scripts/kafka {action} {node}: done in {time.monotonic() - started:.1f}s")

    async def kill_instance(self, instance: Instance) -> None:
        await asyncio.to_thread(instance.kill)

    async def restart_instance(self, instance: Instance) -> None:
        await asyncio.to_thread(instance.start)
        self.event(f"instance {instance.name} started again")

    # --- where the fault goes ---

    async def committed(self) -> int:
        offsets = self.latest()
        return 0 if offsets is None else offsets.committed_total

    def latest(self) -> Offsets | None:
        return next((s.offsets for s in reversed(self.samples) if s.offsets is not None), None)

    async def wait_committed(self, share: float, *, timeout: float = 180) -> None:
        """Until the group has committed `share` of the orders, or (should the group be slow, or its
        offsets unreadable) the producer has had `share` + 15 % of them acknowledged: the fault
        lands while orders are still coming. Past `timeout`, go on and say so."""
        target = int(self.orders * share)
        produced_target = int(self.orders * min(0.9, share + 0.15))
        deadline = time.monotonic() + timeout
        while True:
            committed, produced = await self.committed(), self.produced()
            if committed >= target:
                self.event(f"trigger: {committed} of {self.orders} committed ({produced} produced)")
                return
            if produced >= produced_target:
                self.event(
                    f"trigger: {produced} of {self.orders} produced, only {committed} committed "
                    f"(of {target} awaited)"
                )
                return
            if time.monotonic() > deadline:
                self.event(f"trigger: only {committed} of {target} committed after {timeout:.0f}s")
                return
            await asyncio.sleep(0.2)

    async def wait_moving(self, *, timeout: float) -> None:
        """Until every instance is ready and every partition with input pending has committed
        something since this call began; past `timeout`, go on and say so."""
        began = time.monotonic()
        before = self.latest()
        while time.monotonic() - began < timeout:
            now = self.latest()
            ready = [at for at, statuses in self.readiness if at >= self.now() - 1.5]
            if (
                now is not None
                and before is not None
                and all(i.alive for i in self.instances)
                and ready
                and all(code == 200 for code in self.readiness[-1][1].values())
                and all(
                    now.committed.get(p, 0) > before.committed.get(p, 0) or now.committed.get(p, 0) >= end
                    for p, end in now.end.items()
                )
            ):
                self.event(f"every partition moving again after {time.monotonic() - began:.1f}s")
                return
            await asyncio.sleep(0.5)
        self.event(f"not every partition moving again after {timeout:.0f}s; going on")

    def produced(self) -> int:
        return 0 if self.producer is None else self.producer.production.acked

    async def input_leader(self) -> int:
        """The broker that leads most input partitions (ties: most output and dead-letter leaderships)."""
        found = await leaders(self.cluster.bootstrap, self.input)
        others: list[int] = []
        for topic in (self.output, self.dead_letter):
            with contextlib.suppress(Exception):
                others += (await leaders(self.cluster.bootstrap, topic)).values()
        node = most_common(found.values(), prefer=[n for n, _ in _ranked(others)])
        self.event(f"input partition leaders {dict(sorted(found.items()))}: broker {node} leads most")
        return node

    def transactional_ids(self) -> list[str]:
        return [f"{self.group}-{self.input}-{p}" for p in range(PARTITIONS)]


def _ranked(ids: list[int]) -> list[tuple[int, int]]:
    tally: dict[int, int] = {}
    for i in ids:
        tally[i] = tally.get(i, 0) + 1
    return sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))


# --- the scenarios ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    description: str
    produce_s: float  # how long the orders are spread over: the fault happens within
    inject: Callable[[Run], Awaitable[None]]


TRIGGER_SHARE = 0.10


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
    run.fault(f"SIGKILL broker {node}")
    await run.broker("kill", node)
    await asyncio.sleep(max(0.0, BROKER_DOWN_S - (run.now() - (run.fault_at or 0.0))))
    await run.broker("start", node)
    run.restored(f"broker {node} serves again")


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
    run.fault(f"SIGKILL broker {node}, {what}")
    await run.broker("kill", node)
    await asyncio.sleep(max(0.0, BROKER_DOWN_S - (run.now() - (run.fault_at or 0.0))))
    await run.broker("start", node)
    run.restored(f"broker {node} serves again")


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
    run.fault(f"SIGSTOP broker {node} for {PAUSE_S:.0f}s")
    await run.broker("pause", node)
    await asyncio.sleep(max(0.0, PAUSE_S - (run.now() - (run.fault_at or 0.0))))
    await run.broker("resume", node)
    run.restored(f"broker {node} resumed (SIGCONT)")


async def _broker_and_instance_kill(run: Run) -> None:
    await run.wait_committed(TRIGGER_SHARE)
    node = await run.input_leader()
    run.fault(f"SIGKILL broker {node} and instance a at the same time")
    await asyncio.gather(run.broker("kill", node), run.kill_instance(run.instances[0]))
    await run.restart_instance(run.instances[0])
    await asyncio.sleep(max(0.0, BROKER_DOWN_S - (run.now() - (run.fault_at or 0.0))))
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


# --- the harness -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_aiokafka() -> Iterator[None]:
    """aiokafka logs every failed connection to a dead broker, many times a second: the harness's
    own clients are meant to see those, the service's logs are where they count."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def run_scenario(
    cluster: Cluster,
    number: int,
    guarantee: str,
    *,
    orders_count: int,
    evidence: Path,
    deadline_s: float | None = None,
) -> Result:
    """Run scenario `number` in `guarantee` on fresh topics; never raises for what it finds: a
    failure of the service (or of the harness) is in the result, with its evidence in `evidence`."""
    with _quiet_aiokafka():
        return await _run_scenario(cluster, number, guarantee, orders_count, evidence, deadline_s)


async def _run_scenario(
    cluster: Cluster,
    number: int,
    guarantee: str,
    orders_count: int,
    evidence: Path,
    deadline_s: float | None,
) -> Result:
    scenario = SCENARIOS[number]
    if guarantee not in GUARANTEES:
        raise ValueError(f"unknown guarantee {guarantee!r}")
    label = f"{number}-{'eos' if guarantee == 'exactly_once' else 'alo'}"
    evidence = evidence / label
    evidence.mkdir(parents=True, exist_ok=True)
    run = Run(cluster, guarantee, orders_count, evidence, label)
    result = Result(number, scenario.title, guarantee, orders_count, str(evidence))
    deadline = deadline_s if deadline_s is not None else 900 + scenario.produce_s + orders_count / 100
    run.event(
        f"scenario {number} ({scenario.title}), {guarantee}, {orders_count} orders, deadline {deadline:.0f}s"
    )
    producer: ProducerProcess | None = None
    tasks: list[asyncio.Task[Any]] = []
    scope = asyncio.timeout(deadline)
    try:
        async with scope:
            states = await asyncio.to_thread(cluster.status)
            if any(state != "running" for state in states.values()) or len(states) < len(cluster.nodes):
                run.event(f"cluster not whole ({states}): scripts/kafka up")
                await asyncio.to_thread(cluster.ensure_all_running)
            await create_input_topic(cluster.bootstrap, run.input)
            for instance in run.instances:
                instance.start()
            ready = await asyncio.gather(*(i.wait_ready(READY_TIMEOUT_S) for i in run.instances))
            if not all(ready):
                raise RuntimeError(
                    "instances not ready at start: "
                    + ", ".join(
                        f"{i.name} exit {i.exit_code}"
                        for i, ok in zip(run.instances, ready, strict=True)
                        if not ok
                    )
                )
            run.event("instances a and b ready")
            tasks.append(asyncio.create_task(_monitor(run)))
            producer = run.producer = ProducerProcess(
                cluster.bootstrap,
                run.input,
                orders_count,
                prefix=label,
                seconds=scenario.produce_s,
                timeout=scenario.produce_s + 240,
            )
            producing = asyncio.create_task(producer.run())
            producing.add_done_callback(lambda task: _produced(run, task))
            tasks.append(producing)
            await scenario.inject(run)
            await producing
            result.drained = await _drain(run, timeout=120 + orders_count / 250)
            await _check_instances(run, result)
            if not result.drained:
                reason = "the group did not commit the whole input"
                for instance in run.instances:
                    await _manual_restart(run, result, instance, reason)
                result.drained = await _drain(run, timeout=120 + orders_count / 250)
            _measure(run, result)
    except TimeoutError as exc:
        result.error = f"deadline of {deadline:.0f}s passed" if scope.expired() else f"TimeoutError: {exc}"
        run.event(f"HARNESS: {result.error}")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        run.event(f"HARNESS: {result.error}")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await run.progress.close()
        if run.fault_at is not None and run.restored_at is None:  # the scenario did not undo its fault
            run.event("restoring the cluster: scripts/kafka up")
            with contextlib.suppress(Exception):
                await asyncio.to_thread(cluster.ensure_all_running)
        await asyncio.gather(*(asyncio.to_thread(i.terminate) for i in run.instances), return_exceptions=True)
        if producer is not None:
            production = producer.production
            result.produced, result.resent = production.acked, production.resent
            result.producer_errors = dict(production.errors)
    result.unexpected_exits = run.unexpected_exits
    try:
        await _verify(run, result)
    except Exception as exc:
        result.error = (result.error + "; " if result.error else "") + f"verify: {type(exc).__name__}: {exc}"
    result.events = run.events
    result.elapsed_s = round(run.now(), 1)
    _write_evidence(run, result)
    run.event(result.summary())
    return result


def _produced(run: Run, task: "asyncio.Task[Any]") -> None:
    if run.producer is not None and not task.cancelled():
        p = run.producer.production
        run.event(f"producer done: {p.acked} of {p.total} orders acknowledged, {p.resent} sent again")


async def _monitor(run: Run) -> None:
    """Offsets every 0.5 s, readiness of the live instances every second, exits nobody asked for."""
    tick = 0
    reported: set[tuple[str, int]] = set()
    while True:
        began = time.monotonic()
        try:
            run.sample(await run.progress.sample())
            if tick % 2 == 0:
                live = [i for i in run.instances if i.alive]
                statuses = await asyncio.gather(*(i.ready() for i in live))
                run.readiness.append((run.now(), {i.name: s for i, s in zip(live, statuses, strict=True)}))
        except Exception as exc:  # a sample lost, not the monitor
            run.event(f"monitor: sample failed: {type(exc).__name__}: {exc}")
        for instance in run.instances:
            if instance.exited_on_its_own and (instance.name, instance.starts) not in reported:
                reported.add((instance.name, instance.starts))
                text = f"instance {instance.name} exited on its own with code {instance.exit_code}"
                run.unexpected_exits.append(f"{text} at +{run.now():.1f}s")
                run.event(text)
        tick += 1
        await asyncio.sleep(max(0.0, SAMPLE_EVERY_S - (time.monotonic() - began)))


async def _drain(run: Run, *, timeout: float) -> bool:
    """Until the group's committed offsets equal the input's end offsets, in a sample of the monitor
    taken after this call began."""
    deadline = time.monotonic() + timeout
    seen = len(run.samples)
    while time.monotonic() < deadline:
        fresh = [s.offsets for s in run.samples[seen:] if s.offsets is not None]
        if fresh and fresh[-1].drained:
            run.event(f"drained: {fresh[-1].committed_total} of {fresh[-1].end_total} committed")
            return True
        await asyncio.sleep(0.25)
    latest = run.latest()
    run.event(
        f"NOT drained after {timeout:.0f}s: committed {latest.committed if latest else '?'}, "
        f"end {latest.end if latest else '?'}"
    )
    return False


async def _check_instances(run: Run, result: Result) -> None:
    """Every instance must run and be ready at the end; what is not gets a manual restart."""
    for instance in run.instances:
        if not instance.alive:
            await _manual_restart(
                run, result, instance, f"{instance.name} exited (code {instance.exit_code})"
            )
        elif not await instance.wait_ready(FINAL_READY_TIMEOUT_S):
            status = await instance.ready()
            await _manual_restart(
                run,
                result,
                instance,
                f"{instance.name} not ready {FINAL_READY_TIMEOUT_S:.0f}s (status {status})",
            )
        else:
            run.event(f"instance {instance.name}: alive and ready")
    live = [i for i in run.instances if i.alive]
    statuses = await asyncio.gather(*(i.ready() for i in live))
    run.readiness.append((run.now(), {i.name: s for i, s in zip(live, statuses, strict=True)}))


async def _manual_restart(run: Run, result: Result, instance: Instance, reason: str) -> None:
    result.restarts_needed += 1
    result.restart_reasons.append(reason)
    run.event(f"MANUAL RESTART of instance {instance.name}: {reason}")
    instance.note(f"manual restart: {reason}")
    if instance.alive:
        await run.kill_instance(instance)
    await run.restart_instance(instance)
    await instance.wait_ready(READY_TIMEOUT_S)


def _measure(run: Run, result: Result) -> None:
    result.longest_stall_s = longest_stall(run.samples)
    result.recovery_s = recovery_time(run)
    if result.recovery_s is not None and run.fault_at is not None and run.last_fault_at != run.fault_at:
        last = (run.last_fault_at or run.fault_at) - run.fault_at
        result.recovery_after_last_s = round(max(0.0, result.recovery_s - last), 1)


def longest_stall(samples: list[Sample]) -> float:
    """The longest stretch in which some partition's committed offset did not move while it had
    input pending (its end offset beyond the committed one); samples that could not be taken
    count as no progress."""
    longest = 0.0
    since: dict[int, float] = {}  # partition -> when its current plateau began, while pending
    last: dict[int, int] = {}
    for sample in samples:
        if sample.offsets is None:
            continue
        for partition, end in sample.offsets.end.items():
            committed = sample.offsets.committed.get(partition, 0)
            began = since.pop(partition, None)
            if partition in last and committed > last[partition]:
                if began is not None:
                    longest = max(longest, sample.at - began)
                if end > committed:
                    since[partition] = sample.at
            elif end > committed:
                since[partition] = sample.at if began is None else began
                longest = max(longest, sample.at - since[partition])
            last[partition] = committed
    return round(longest, 1)


def recovery_time(run: Run) -> float | None:
    """From the first fault action to the moment from which on, to the end of the run, the service
    was caught up (every input older than CAUGHT_UP_S committed, per partition) and every live
    instance answered ready; None when that moment never came."""
    if run.fault_at is None:
        return None
    good = [s for s in run.samples if s.offsets is not None]
    history: list[tuple[float, dict[int, int]]] = [(s.at, s.offsets.end) for s in good if s.offsets]

    def caught_up(sample: Sample) -> bool:
        assert sample.offsets is not None
        earlier = [end for at, end in history if at <= sample.at - CAUGHT_UP_S]
        return not earlier or sample.offsets.reached(earlier[-1])

    last_bad = run.fault_at
    for sample in good:
        if sample.at >= run.fault_at and not caught_up(sample):
            last_bad = max(last_bad, sample.at)
    for at, statuses in run.readiness:
        if at >= run.fault_at and any(code != 200 for code in statuses.values()):
            last_bad = max(last_bad, at)
    after = [s.at for s in good if s.at > last_bad]
    if last_bad == run.fault_at:
        return 0.0
    if not after:
        return None
    return round(after[0] - run.fault_at, 1)


# --- verification ----------------------------------------------------------------------------------------


async def _verify(run: Run, result: Result) -> None:
    report: dict[str, Any] | None = None
    for attempt in (1, 2):
        report, note = await asyncio.to_thread(_run_verify, run.env)
        (run.evidence / f"verify-{attempt}.json").write_text(json.dumps(report or {"note": note}, indent=1))
        if report is not None and report.get("result") in ("clean", "violations"):
            break
        run.event(f"verify could not check (attempt {attempt}): {note}")
        report = None
        await asyncio.sleep(5)
    if report is None:
        result.checked_by = "fallback: own reconciliation by order id (the verify command could not check)"
        run.event("checking with our own reconciliation by order id instead")
        report = (
            await reconcile_by_key(run.cluster.bootstrap, run.input, run.output, run.dead_letter)
        ).as_dict()
        (run.evidence / "fallback-check.json").write_text(json.dumps(report, indent=1))
    else:
        result.checked_by = f"`python -m {verify_module()} --json`"
    counts = report["counts"]
    read = report.get("records_read", {})
    result.verify_result = str(report.get("result"))
    result.inputs = int(counts["inputs"])
    result.processed = int(counts["processed"])
    result.dead_lettered = int(counts["dead_lettered"])
    result.outcome_records = int(read.get("output", 0)) + int(read.get("dead_letter", 0))
    result.lost = int(counts["missing"])
    result.duplicates = int(counts["duplicates"])
    result.order_violations = int(counts["order_violations"])
    result.unmatched = int(counts.get("unmatched", 0))


def verify_module() -> str:
    """Where the verify command lives: it moved from `order_service.verify` to `order_service.cli.verify`."""
    for name in VERIFY_MODULES:
        with contextlib.suppress(ImportError):
            if importlib.util.find_spec(name) is not None:
                return name
    return VERIFY_MODULES[0]


def _run_verify(env: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    command = [sys.executable, "-m", verify_module(), "--json", "--timeout", "60", "--list", "20"]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"no answer within {VERIFY_TIMEOUT_S:.0f}s"
    try:
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return None, f"exit {done.returncode}, no JSON: {(done.stderr or done.stdout).strip()[-500:]}"
    return report, f"exit {done.returncode}: {report.get('error', report.get('result'))}"


def _write_evidence(run: Run, result: Result) -> None:
    (run.evidence / "result.json").write_text(json.dumps(asdict(result), indent=1))
    with (run.evidence / "samples.jsonl").open("w") as out:
        for s in run.samples:
            offsets = None if s.offsets is None else asdict(s.offsets)
            if offsets is not None:
                offsets["stale"] = sorted(offsets["stale"])
            out.write(json.dumps({"at": s.at, "produced": s.produced, "offsets": offsets}) + "\n")
    with (run.evidence / "samples.csv").open("w") as out:
        out.write("at_s,committed,end,produced,end_unknown_for\n")
        for s in run.samples:
            if s.offsets is None:
                out.write(f"{s.at},,,{s.produced},\n")
            else:
                stale = " ".join(map(str, sorted(s.offsets.stale)))
                out.write(f"{s.at},{s.offsets.committed_total},{s.offsets.end_total},{s.produced},{stale}\n")
    (run.evidence / "readiness.json").write_text(json.dumps(run.readiness))


def evidence_lines(result: Result, lines: int = 25) -> Iterator[str]:
    """The service log lines (warnings and errors, and the harness's) behind a failed row."""
    for name in ("a", "b"):
        path = Path(result.evidence) / f"service-{name}.log"
        picked = log_tail(path, lines)
        if picked:
            yield f"instance {name} ({path}):"
            yield from picked
