"""The effects table: the stock processor against the bench's PostgreSQL, three contenders in rounds.

Each run gets a database of its own, created and filled just before it (the same stock for the
same orders), so that rounds compare: no run finds the tables, the indexes or the dead rows of
another. After the run the ledger is checked with SQL; a failed check fails the contender.
"""

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass

from bench.throughput import harness, kafka_io
from bench.throughput.effects import postgres
from bench.throughput.harness import BIN, SERVICE, SERVICE_ENV, Contender, launch, topic_env
from bench.throughput.measure import EffectsInfo, Results, Run, from_timestamps
from bench.throughput.proc import busy_seconds, cpu_seconds
from bench.throughput.rounds import ROUNDS, median_run

STOCK = "order_service.processors.stock:processor"
INBOX_TABLE = "order_service_inbox"
# Each SKU's stock: this share of what the run's orders want of it, rounded up (postgres.stock_for).
STOCK_SHARE = 0.9
# Records per run: the service's runs last 10-20 s at the rates expected here, the hand-written
# loop's (one transaction, one publish and one commit per order) about as long.
RECORDS_CAP = 100_000
NAIVE_CAP = 20_000
# A smaller request than this is the CI smoke run (make bench-smoke): one round.
SMOKE_BELOW = 10_000
POLL_S = 0.5
TIMEOUT_S = 900


def contenders() -> list[Contender]:
    service = {
        **SERVICE_ENV,
        "ORDER_SERVICE_DELIVERY__GUARANTEE": "exactly_once",
        "ORDER_SERVICE_PROCESSING__PROCESSOR": STOCK,
    }
    return [
        Contender("effects-inbox", SERVICE, service),
        Contender("effects-no-inbox", SERVICE, {**service, "ORDER_SERVICE_EFFECTS__INBOX": "false"}),
        Contender(
            "effects-naive",
            [str(BIN / "python"), "-m", "bench.throughput.contenders.naive_effects"],
            slow=True,
        ),
    ]


@dataclass(frozen=True)
class Orders:
    """The run's input as the bench produces it, and what it asks of the stock."""

    demand: Counter[str]  # units per SKU
    units: dict[str, int]  # units per order id

    @classmethod
    def of(cls, records: int, prefix: str) -> "Orders":
        demand: Counter[str] = Counter()
        units: dict[str, int] = {}
        for _key, value in kafka_io.make_orders(records, prefix=prefix):
            order = json.loads(value)
            units[order["order_id"]] = sum(item["quantity"] for item in order["items"])
            for item in order["items"]:
                demand[item["sku"]] += item["quantity"]
        return cls(demand, units)


def check(name: str, ledger: postgres.Ledger, orders: Orders, stock: dict[str, int]) -> dict[str, object]:
    """The ledger after a run: one row per input at least; exactly one, with as many inbox rows and
    the stock reduced by exactly what the accepted orders wanted, for the exactly-once contender.
    Raises CheckFailed."""
    records = len(orders.units)
    reserved = sum(stock.values()) - ledger.units_left
    wanted = sum(orders.units[order_id] for order_id in ledger.accepted)
    found: dict[str, object] = {
        "records": records,
        "ledger_rows": ledger.rows,
        "inputs_in_ledger": ledger.inputs,
        "accepted": len(ledger.accepted),
        "inbox_rows": ledger.inbox_rows,
        "units_reserved": reserved,
        "units_of_accepted_orders": wanted,
    }
    problems = []
    if ledger.inputs != records or ledger.orders != records:
        problems.append(f"{ledger.inputs} inputs and {ledger.orders} orders in the ledger, not {records}")
    if name == "effects-inbox":
        if ledger.rows != records:
            problems.append(f"{ledger.rows} ledger rows for {records} inputs")
        if ledger.inbox_rows != records:
            problems.append(f"{ledger.inbox_rows} inbox rows for {records} inputs")
        if reserved != wanted:
            problems.append(f"{reserved} units reserved, the accepted orders want {wanted}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return found


class CheckFailed(RuntimeError):
    """What a run left in its database is wrong for its guarantee."""


async def committed(env: dict[str, str]) -> int:
    return await kafka_io.committed_total(env["BENCH_BOOTSTRAP"], env["BENCH_INPUT"], env["BENCH_GROUP"])


async def measured_run(
    contender: Contender, records: int, label: str, url: str
) -> tuple[Run, dict[str, object]]:
    """`records` orders through the contender, with its database at `url`; the run, and the CPU it
    and the server spent per record from its first committed record to its last."""
    env = topic_env(label)
    await kafka_io.create_topics(harness.BOOTSTRAP, [env["BENCH_INPUT"]], log_append_time=True)
    await kafka_io.create_topics(harness.BOOTSTRAP, [env["BENCH_OUTPUT"]])
    await kafka_io.produce_orders(harness.BOOTSTRAP, env["BENCH_INPUT"], records, prefix=label)
    database = {"ORDER_SERVICE_EFFECTS__DATABASE_URL": url, "BENCH_DATABASE_URL": url}
    launched = launch(contender.command, {**env, **contender.env, **database}, log_name=label)
    pid = launched.process.pid
    deadline = time.monotonic() + TIMEOUT_S
    first: tuple[int, float, float, float, float] | None = None
    try:
        while (done := await committed(env)) < records:
            if launched.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{label} stopped or timed out; see bench/results/{label}.log")
            if done and first is None:
                first = (
                    done,
                    time.monotonic(),
                    cpu_seconds(pid),
                    postgres.server_cpu_seconds(),
                    busy_seconds(),
                )
            await asyncio.sleep(POLL_S)
        last = (done, time.monotonic(), cpu_seconds(pid), postgres.server_cpu_seconds(), busy_seconds())
    finally:
        launched.terminate()
        peak = launched.reap()
    inputs = await kafka_io.timestamps(harness.BOOTSTRAP, env["BENCH_INPUT"])
    outputs = await kafka_io.timestamps(harness.BOOTSTRAP, env["BENCH_OUTPUT"])
    run = from_timestamps(label, inputs, outputs, peak)
    return run, usage(first, last)


def usage(
    first: tuple[int, float, float, float, float] | None, last: tuple[int, float, float, float, float]
) -> dict[str, object]:
    """CPU µs per record of the contender and of PostgreSQL, and the machine's busy cores, between the
    first poll that found records committed and the end (none when that saw under 1,000 records)."""
    if first is None or last[0] - first[0] < 1_000:
        return {"contender_us": None, "postgres_us": None, "machine_busy_cores": None, "window_s": None}
    records, seconds = last[0] - first[0], last[1] - first[1]
    return {
        "contender_us": round((last[2] - first[2]) / records * 1e6, 1),
        "postgres_us": round((last[3] - first[3]) / records * 1e6, 1),
        "machine_busy_cores": round((last[4] - first[4]) / seconds, 2),
        "window_s": round(seconds, 1),
    }


async def one_run(
    contender: Contender, records: int, label: str, server: str, share: float
) -> tuple[Run, dict[str, object]]:
    """A fresh database, the run, the check; the database is dropped after."""
    orders = Orders.of(records, label)
    stock = postgres.stock_for(orders.demand, share)
    name = label.replace("-", "_")
    url = await postgres.fresh_database(server, name, stock)
    try:
        run, details = await measured_run(contender, records, label, url)
        inbox = INBOX_TABLE if contender.name == "effects-inbox" else None
        details["ledger"] = check(contender.name, await postgres.read_ledger(url, inbox), orders, stock)
    finally:
        await postgres.drop_database(server, name)
    print(f"{label}: {run.as_dict()} {details}", flush=True)
    return run, details


def records_for(contender: Contender, requested: int) -> int:
    return min(requested, NAIVE_CAP if contender.slow else RECORDS_CAP)


async def benchmark_effects(requested: int, results: Results) -> None:
    """Each contender once per round (one in the smoke run) against a fresh local PostgreSQL; a row is
    the median run by throughput."""
    planned = contenders()
    rounds = 1 if requested < SMOKE_BELOW else ROUNDS
    info = EffectsInfo(
        skus=0,
        stock_share=STOCK_SHARE,
        records={c.name: records_for(c, requested) for c in planned},
        runs={},
        rows={},
        failed={},
    )
    results.effects = info
    done: dict[str, list[Run]] = {c.name: [] for c in planned}
    try:
        with postgres.local_postgres() as server:
            for n in range(1, rounds + 1):
                for contender in planned:
                    if contender.name in info["failed"]:
                        continue
                    label = f"{contender.name}-{n}" if rounds > 1 else contender.name
                    records = info["records"][contender.name]
                    info["skus"] = max(info["skus"], len(Orders.of(records, label).demand))
                    try:
                        run, info["runs"][label] = await one_run(
                            contender, records, label, server, STOCK_SHARE
                        )
                    except RuntimeError as failed:
                        info["failed"][contender.name] = f"{label}: {failed}"
                        print(f"{contender.name} failed: {failed}", flush=True)
                        continue
                    done[contender.name].append(run)
    except postgres.Unavailable as unavailable:
        info["failed"].update({c.name: f"not run: {unavailable}" for c in planned if not done[c.name]})
        print(f"effects table not run: {unavailable}", flush=True)
    for name, runs in done.items():
        if runs and name not in info["failed"]:
            row = median_run(name, runs)
            info["rows"][name] = next(r.name for r in runs if r.throughput_rps == row.throughput_rps)
            results.runs.append(row)
