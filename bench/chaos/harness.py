"""The harness that runs one chaos scenario (bench/chaos/scenarios.py) in one delivery guarantee.

`run_scenario` is what `make chaos` (bench/chaos/) runs for each row of docs/reliability.md, and
what tests/integration/cluster/test_chaos.py runs in CI: fresh topics and group, two service instances in
one group, orders produced at an even pace while the fault happens, then the checks.

A run, step by step (every step has a deadline, and so has the whole run):

1. create the input topic (6 partitions, RF 3, min.insync.replicas 2); for a scenario with database
   effects (7, 8), a fresh database on the run's PostgreSQL with the stock processor's tables and
   its stock (bench/chaos/effects.py); start instances a and b (the service creates its output and
   dead-letter topics with RF 3) and wait until both are ready;
2. start the paced producer (bench/chaos/producer/, a process of its own) and the monitor (the
   group's committed and the input's end offsets every 0.5 s, each live instance's /health/ready
   every second);
3. inject the fault once the group has committed a share of the input, then undo it as the
   scenario says (restart the killed broker or instance, resume the paused broker);
4. wait until every order is acknowledged and the group's committed offsets equal the end offsets;
5. check that every instance that is meant to run is alive and ready. One that died on its own, is
   not ready, or a group that does not drain, gets a *manual* restart: counted, and a failure;
6. stop the instances (SIGTERM) and run the verify command (`python -m order_service.cli.verify
   --json`) with their settings; with database effects, count them with SQL (bench/chaos/effects.py).
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, Protocol

from bench.chaos.checks import READY_TIMEOUT_S, check_instances, manual_restart, verify
from bench.chaos.effects import (
    STOCK_PROCESSOR,
    STOCK_SHARE,
    UNKNOWN_SKU_EVERY,
    check_effects,
    logged_retries,
    run_stock,
)
from bench.chaos.evidence import write_evidence
from bench.chaos.kafka.metadata import create_input_topic
from bench.chaos.monitor import drain, measure, watch
from bench.chaos.producer import ProducerProcess
from bench.chaos.result import Effects, Result
from bench.chaos.run_state import Cluster, Database, Network, Run
from bench.chaos.scenarios import (
    BROKER_DOWN_S,
    DATABASE_DOWN_S,
    LOG_LINES_PER_FAULT,
    NETWORK_FAULT_S,
    SCENARIOS,
)
from bench.chaos.service import warnings_since
from bench.postgres import fill_stock

GUARANTEES: Final = ("at_least_once", "exactly_once")


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
    produce_s: float | None = None,
    broker_down_s: float | None = None,
    postgres: "PostgresServer | None" = None,
    database_down_s: float | None = None,
    network: Network | None = None,
    network_fault_s: float | None = None,
) -> Result:
    """Run scenario `number` in `guarantee` on fresh topics; never raises for what it finds: a
    failure of the service (or of the harness) is in the result, with its evidence in `evidence`.

    `produce_s` (default: the scenario's) is how long the orders are spread over, `broker_down_s`
    (default BROKER_DOWN_S) how long a killed broker stays down in scenarios 2, 3 and 6,
    `database_down_s` (default DATABASE_DOWN_S) how long a killed PostgreSQL stays down in scenario
    7: `make chaos` keeps the defaults, CI passes shorter ones (scenarios.CI_*). The scenarios with
    database effects (7, 8) need `postgres`, a running server: each run gets a fresh database on it.
    The network scenarios (9-13) need `network`, the proxies in front of the brokers (the cluster's
    `client_bootstrap`), and hold the fault `network_fault_s` (default NETWORK_FAULT_S).
    """
    with _quiet_aiokafka():
        return await _run_scenario(
            cluster,
            number,
            guarantee,
            orders_count,
            evidence,
            deadline_s,
            SCENARIOS[number].produce_s if produce_s is None else produce_s,
            BROKER_DOWN_S if broker_down_s is None else broker_down_s,
            postgres,
            DATABASE_DOWN_S if database_down_s is None else database_down_s,
            network,
            NETWORK_FAULT_S if network_fault_s is None else network_fault_s,
        )


async def _run_scenario(
    cluster: Cluster,
    number: int,
    guarantee: str,
    orders_count: int,
    evidence: Path,
    deadline_s: float | None,
    produce_s: float,
    broker_down_s: float,
    postgres: "PostgresServer | None",
    database_down_s: float,
    network: Network | None,
    network_fault_s: float,
) -> Result:
    scenario = SCENARIOS[number]
    if guarantee not in GUARANTEES:
        raise ValueError(f"unknown guarantee {guarantee!r}")
    label = f"{number}-{'eos' if guarantee == 'exactly_once' else 'alo'}"
    evidence = evidence / label
    evidence.mkdir(parents=True, exist_ok=True)
    run = Run(
        cluster,
        guarantee,
        orders_count,
        evidence,
        label,
        broker_down_s=broker_down_s,
        postgres=postgres,
        database_down_s=database_down_s,
        network=network,
        network_fault_s=network_fault_s,
    )
    result = Result(number, scenario.title, guarantee, orders_count, str(evidence))
    result.effects_expected = scenario.effects
    if scenario.network:
        result.warning_limit = LOG_LINES_PER_FAULT
    stock: dict[str, int] = {}
    deadline = deadline_s if deadline_s is not None else 900 + produce_s + orders_count / 100
    run.event(
        f"scenario {number} ({scenario.title}), {guarantee}, {orders_count} orders over {produce_s:.0f}s, "
        f"deadline {deadline:.0f}s"
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
            if scenario.network and network is None:
                raise RuntimeError(f"scenario {number} needs the proxies in front of the brokers (network=)")
            if network is not None:  # whatever an earlier run left on the links
                await asyncio.to_thread(network.reset)
            await create_input_topic(cluster.bootstrap, run.input)
            if scenario.effects:
                stock = await _database(run, postgres, label)
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
            tasks.append(asyncio.create_task(watch(run)))
            producer = run.producer = ProducerProcess(
                cluster.bootstrap,
                run.input,
                orders_count,
                prefix=label,
                seconds=produce_s,
                timeout=produce_s + 240,
            )
            producing = asyncio.create_task(producer.run())
            producing.add_done_callback(lambda task: _produced(run, task))
            tasks.append(producing)
            await scenario.inject(run)
            await producing
            result.drained = await drain(run, timeout=120 + orders_count / 250)
            await check_instances(run, result)
            if not result.drained:
                reason = "the group did not commit the whole input"
                for instance in run.instances:
                    await manual_restart(run, result, instance, reason)
                result.drained = await drain(run, timeout=120 + orders_count / 250)
            measure(run, result)
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
            if network is not None:
                run.event("restoring the links: every toxic removed")
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(network.reset)
            run.event("restoring the cluster: scripts/kafka up")
            with contextlib.suppress(Exception):
                await asyncio.to_thread(cluster.ensure_all_running)
            if postgres is not None and scenario.effects:
                with contextlib.suppress(Exception):
                    if not await asyncio.to_thread(postgres.running):
                        run.event("restoring PostgreSQL: scripts/postgres start")
                        await asyncio.to_thread(postgres.start)
        await asyncio.gather(*(asyncio.to_thread(i.terminate) for i in run.instances), return_exceptions=True)
        if producer is not None:
            production = producer.production
            result.produced, result.resent = production.acked, production.resent
            result.producer_errors = dict(production.errors)
    result.unexpected_exits = run.unexpected_exits
    result.fault_at_s = run.fault_at
    if run.fault_at is not None:
        for instance in run.instances:
            count, messages = warnings_since(instance.log, run.started_wall + run.fault_at)
            result.warning_lines[instance.name] = count
            result.warning_messages[instance.name] = dict(list(messages.items())[:5])
        run.event(
            "WARNING-or-worse service log lines from the fault on: "
            + ", ".join(f"{name} {count}" for name, count in result.warning_lines.items())
        )
    try:
        await verify(run, result)
    except Exception as exc:
        result.error = (result.error + "; " if result.error else "") + f"verify: {type(exc).__name__}: {exc}"
    if scenario.effects and run.database_url is not None:
        try:
            result.effects = await check_effects(
                run.database_url,
                bootstrap=cluster.bootstrap,
                input_topic=run.input,
                output=run.output,
                group=run.group,
                initial=stock,
            )
        except Exception as exc:
            result.effects = Effects(error=f"{type(exc).__name__}: {exc}")
        result.effects.retried = logged_retries(i.log for i in run.instances)
        run.event(f"effects (SQL): {result.effects.summary()}")
        if result.effects.retried:
            run.event(
                "batch attempts the service logged as failed for the database: "
                + ", ".join(f"{error} x{n}" for error, n in result.effects.retried.items())
            )
    result.events = run.events
    result.elapsed_s = round(run.now(), 1)
    write_evidence(run, result)
    run.event(result.summary())
    return result


class PostgresServer(Database, Protocol):
    """The run's PostgreSQL server (bench.postgres.LocalPostgres), up already."""

    async def fresh_database(self, label: str) -> str: ...


async def _database(run: Run, postgres: PostgresServer | None, label: str) -> dict[str, int]:
    """A fresh database with the stock processor's tables and the run's stock; the stock."""
    if postgres is None:
        raise RuntimeError(f"scenario {label} runs the stock processor and needs a PostgreSQL (postgres=)")
    url = await postgres.fresh_database(label)
    stock = await asyncio.to_thread(run_stock, run.orders, label)
    await fill_stock(url, stock)
    run.use_database(url, STOCK_PROCESSOR)
    run.event(
        f"database {url.rsplit('/', 1)[-1]}: stock of {len(stock)} SKUs, {sum(stock.values())} units "
        f"({STOCK_SHARE:.0%} of what the orders want; 1 SKU in {UNKNOWN_SKU_EVERY} has none: unknown)"
    )
    return stock


def _produced(run: Run, task: "asyncio.Task[Any]") -> None:
    if run.producer is not None and not task.cancelled():
        p = run.producer.production
        run.event(f"producer done: {p.acked} of {p.total} orders acknowledged, {p.resent} sent again")
