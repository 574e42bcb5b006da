"""The chaos report, docs/reliability.md: how the runs were made, the table of rows with their pass
criteria, and each run's timeline (with service log lines for a row that fails).

It is rewritten after every run, so that a long `make chaos` (about 16 minutes for the full
set) shows its finished rows while the rest are still running."""

import argparse
import os
import platform
import re
import shlex
import subprocess
from datetime import datetime
from pathlib import Path

from bench.chaos.checks import verify_module
from bench.chaos.effects import STOCK_PROCESSOR, STOCK_SHARE, UNKNOWN_SKU_EVERY
from bench.chaos.evidence import evidence_lines
from bench.chaos.harness import GUARANTEES
from bench.chaos.monitor import CAUGHT_UP_S
from bench.chaos.result import Effects, Result
from bench.chaos.scenarios import (
    BROKER_DOWN_S,
    CI_BROKER_DOWN_S,
    CI_NETWORK_FAULT_S,
    CI_PRODUCE_S,
    DATABASE_DOWN_S,
    LOG_LINES_PER_FAULT,
    NETWORK_FAULT_S,
    PAUSE_S,
    SCENARIOS,
)

ROOT = Path(__file__).parents[2]
DEFAULT_OUT = ROOT / "docs" / "reliability.md"


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    match = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    memory = f"{int(match.group(1)) / 1024 / 1024:.1f} GiB" if match else "unknown"
    java = subprocess.run(
        ["java", "-version"], capture_output=True, text=True, check=False
    ).stderr.splitlines()
    load = os.getloadavg()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": java[0] if java else "unknown",
        "kafka": (ROOT / "kafka.version").read_text().strip(),
        "load": f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) at the start",
    }


def command(args: argparse.Namespace) -> str:
    parts = [
        "uv run python -m bench.chaos",
        f"--orders {args.orders}",
        f"--scenarios {','.join(map(str, args.scenario_list))}",
        f"--guarantees {','.join(args.guarantee_list)}",
        f"--out {shlex.quote(_shown(args.out))}",
    ]
    return " ".join(parts)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _cell(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value:,}{unit}"


def _effects_cell(r: Result) -> str:
    """ledger rows / inputs with more than one / stock check, or why there are none."""
    e = r.effects
    if e is None:
        return "not checked" if r.effects_expected else "-"
    if e.error:
        return "not checked"
    cell = f"{_cell(e.ledger_rows)} / {_cell(e.ledger_duplicates)} / {'ok' if e.stock_ok else '**wrong**'}"
    if e.failures():
        cell += " (**" + "; ".join(e.failures()) + "**)"
    return cell


def table(results: list[Result]) -> list[str]:
    lines = [
        "| # | scenario | guarantee | inputs | outcomes | lost | duplicates | order violations "
        "| longest stall | time to recovery | restarts needed | database effects: ledger rows / repeated "
        "/ stock | warnings after the fault (a / b) | result |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in results:
        outcomes = (
            f"{_cell(r.outcome_records)} ({_cell(r.processed)} + {_cell(r.dead_lettered)} DLQ)"
            if r.outcome_records is not None
            else "n/a"
        )
        duplicates = _cell(r.duplicates)
        if r.duplicates and not r.exactly_once:
            duplicates += " (allowed)"
        verdict = "pass" if r.passed else "**FAIL**"
        recovery = _cell(r.recovery_s, " s")
        if r.recovery_after_last_s is not None:
            recovery += f" ({_cell(r.recovery_after_last_s, ' s')} after the last step)"
        lines.append(
            f"| {r.scenario} | {r.title} | {r.guarantee} | {_cell(r.inputs)} | {outcomes} | {_cell(r.lost)} "
            f"| {duplicates} | {_cell(r.order_violations)} | {_cell(r.longest_stall_s, ' s')} "
            f"| {recovery} | {r.restarts_needed} | {_effects_cell(r)} | {_warnings_cell(r)} | {verdict} |"
        )
    return lines


def _warnings_cell(r: Result) -> str:
    if not r.warning_lines:
        return "n/a"
    return " / ".join(_cell(r.warning_lines.get(name)) for name in ("a", "b"))


def effects_line(e: Effects) -> str:
    """A run's effects in a sentence, for its section of the report."""
    if e.error:
        return f"Database effects not checked: {e.error}."
    return (
        f"Database effects (SQL): {e.valid_inputs:,} valid inputs; ledger {e.ledger_rows:,} rows "
        f"({e.ledger_duplicates} repeating an input, {e.ledger_missing} inputs without one, "
        f"{e.ledger_foreign} of no input); inbox {e.inbox_rows:,} rows ({e.inbox_missing} missing, "
        f"{e.inbox_foreign} of no input); {e.accepted:,} orders reserved stock, {e.rejected:,} rejected; "
        f"stock {e.stock_initial:,} - {e.stock_reserved:,} reserved = {e.stock_final:,} over {e.skus:,} "
        f"SKUs ({e.stock_mismatched_skus} SKUs off, {e.negative_skus} negative); "
        f"{e.outcomes_checked:,} published outcomes compared, {e.outcome_mismatches} differing from the "
        "ledger's status or the inbox's bytes."
    )


def report(
    results: list[Result], args: argparse.Namespace, host: dict[str, str], began: datetime, took: float
) -> str:
    failed = [r for r in results if not r.passed]
    planned = len(args.scenario_list) * len(args.guarantee_list)
    with_effects = [n for n in args.scenario_list if SCENARIOS[n].effects]
    out = [
        "# Reliability under broker, service, database and network faults",
        "",
        "Written by `make chaos` (`bench/chaos/`); do not edit by hand. A reduced version runs in CI:",
        "`tests/integration/cluster/test_chaos.py` runs scenarios 2, 3 and 10 in both guarantees with",
        "10,000 orders on the tests' 3-node cluster behind its own Toxiproxy, through the same code",
        f"(`bench/chaos/harness.py`), with the orders spread over {CI_PRODUCE_S:.0f} s, the killed broker "
        f"down {CI_BROKER_DOWN_S:.0f} s and the blackhole {CI_NETWORK_FAULT_S:.0f} s (`make chaos`: "
        f"{SCENARIOS[2].produce_s:.0f} s, {BROKER_DOWN_S:.0f} s and {NETWORK_FAULT_S:.0f} s).",
        "",
        f"- **Date:** {began.strftime('%Y-%m-%d %H:%M UTC')}, {took / 60:.0f} min in all",
        f"- **Command:** `{command(args)}`" + (" (what `make chaos` runs)" if _full(args) else ""),
        f"- **Machine:** {host['cpu']}, {host['memory']} memory, {host['os']}; load {host['load']}",
        f"- **Software:** Kafka {host['kafka']} (KRaft, `scripts/kafka`), {host['java']}, "
        f"Python {host['python']}",
        "- **Evidence:** service logs, `verify` JSON and progress samples of every run in "
        f"`{_shown(args.evidence)}`",
        "",
        "## Set-up",
        "",
        "- **Cluster:** 3 combined broker+controller nodes on this machine (`scripts/kafka up --brokers 3`),",
        "  with the project's broker settings: replication factor 3 and `min.insync.replicas=2` for every",
        "  topic, transaction state log included; unclean leader election off.",
        "- **Topics:** fresh for every run: the input created with 6 partitions, RF 3, min ISR 2;",
        "  output and dead-letter topics created by the service",
        "  (`ORDER_SERVICE_TOPICS__REPLICATION_FACTOR=3`).",
        "- **Service:** two instances (`faststream run order_service.app:app`) in one fresh consumer group,",
        "  default settings otherwise (session timeout 10 s, request timeout 30 s).",
        "- **Network:** the instances reach the brokers through Toxiproxy 2.5.0 (`scripts/toxiproxy`), one",
        "  proxy per broker: each broker has a second listener, advertised at its proxy's port, so every",
        "  connection of the service (fetch, produce, group and transaction coordinators) crosses a proxy,",
        "  in every scenario. The brokers reach each other directly, and so do the harness's own clients",
        "  (the producer, the monitor, verify): a network fault cuts the service off, nothing else.",
        f"- **Input:** {args.orders:,} orders per run, 1 % of them malformed (`malformed_corpus`),",
        "  produced at an even pace by an idempotent `acks=all` producer *while* the fault happens; a send",
        "  that fails is sent again, so an input may be written twice (then it is two inputs).",
    ]
    if with_effects:
        runs = ", ".join(map(str, with_effects))
        out += [
            f"- **Database (scenarios {runs}):** PostgreSQL {_pg_version()} of `scripts/postgres` on",
            f"  127.0.0.1:{getattr(args, 'pg_port', 20432)} (fsync and synchronous commit on), started for",
            "  the first of these runs and taken down at the end; a fresh database for every run. The",
            f"  service runs the stock processor (`ORDER_SERVICE_PROCESSING__PROCESSOR={STOCK_PROCESSOR}`,",
            "  `ORDER_SERVICE_EFFECTS__DATABASE_URL` set, inbox on, default batch and timeout settings): it",
            "  reserves each item in `stock` and appends a row to `order_ledger`, in one transaction with",
            f"  the input's inbox row. The stock is {STOCK_SHARE:.0%} of what the run's orders want of each",
            f"  SKU, and 1 SKU in {UNKNOWN_SKU_EVERY} has none (unknown), so that orders are both accepted",
            "  and rejected.",
        ]
    out += [
        "",
        "## Scenarios",
        "",
        "Each in `at_least_once` and in `exactly_once`. The fault starts once the group has committed 10 %",
        "of the orders.",
        "",
    ]
    for number in args.scenario_list:
        s = SCENARIOS[number]
        out.append(
            f"{number}. **{s.title}**: {s.description}; the orders are spread over {s.produce_s:.0f} s."
        )
    out += [
        "",
        "## Results",
        "",
        *table(results),
        "",
        "- **inputs, outcomes, lost, duplicates, order violations:** from",
        f"  `python -m {verify_module()} --json` (`order-service verify`), run after each scenario",
        "  with the service's own settings once every order was",
        "  acknowledged and the group's committed offsets equalled the end offsets; it reads every",
        "  topic with `read_committed`. *Outcomes* are output and dead-letter records (processed +",
        "  dead-lettered inputs, then repeats); *lost* is its `missing` (an input with no outcome).",
        "- **longest stall:** the longest time the group's committed offsets did not move while input was",
        "  pending, sampled every 0.5 s.",
        "- **time to recovery:** from the first fault action to the moment from which on, to the end of",
        f"  the run, the service was caught up (every input older than {CAUGHT_UP_S:.0f} s committed, per",
        "  partition) and every running instance answered `/health/ready` with 200. It includes the",
        "  scenario's own undoing (a broker coming back, an instance restarting) only where that set the",
        "  service back again; `0.0` means it never fell behind. For the scenarios of several steps",
        "  (1, 4) the time after the last step follows in brackets. The timeline of each run is below.",
        "- **restarts needed:** instances the harness had to restart by hand (beyond the scenario's own",
        "  restarts): one that exited on its own, was not ready 45 s after the input was drained, or a group",
        "  that did not commit the whole input.",
        "- **database effects** (scenarios with the stock processor): counted with SQL in the run's",
        "  database after verify, per input (partition, offset) of the input topic read with",
        "  `read_committed`: *ledger rows* in `order_ledger`, *repeated* the rows beyond the first of an",
        "  input, *stock* `ok` when for every SKU initial - what the accepted inputs wanted = final, none",
        "  negative. Also checked (in the run's section): one ledger row and one inbox row per valid",
        "  input and none for anything else, and every published outcome (at-least-once repeats",
        "  included) with the ledger's status and byte for byte the inbox's outcome.",
        "- **warnings after the fault:** service log lines at WARNING or worse of each instance, from the",
        "  first fault action to the end of the run, the dead-lettering of the malformed 1 % aside; the",
        "  most frequent messages are in each run's section.",
        "- **pass:** 0 lost, 0 duplicates in exactly-once (at-least-once duplicates are allowed and",
        "  counted), 0 order violations, no manual restart; with database effects, in both guarantees,",
        "  exactly one ledger and one inbox row per valid input, stock consistent, every published",
        "  outcome the ledger's and the inbox's; in the network scenarios, at most",
        f"  {LOG_LINES_PER_FAULT} warnings per instance.",
        "",
        "Reading the stalls: a broker that is SIGKILLed or SIGSTOPped stays in the ISR of every",
        "partition it replicates (with RF 3 on 3 brokers, all of them) until the controller fences it,",
        "`broker.session.timeout.ms` (9 s) after its last heartbeat. Until then no `acks=all` write",
        "completes on any partition, the chaos producer's and the service's alike, so a stall of about",
        "10 s after such a fault is Kafka's, not the service's. A SIGTERMed broker hands its",
        "leaderships over first (controlled shutdown). While the group coordinator is down, the",
        "committed offsets cannot be read at all: those samples are missing, and a stall spanning them",
        "counts whole.",
        "",
    ]
    if any(SCENARIOS[n].network for n in args.scenario_list):
        out += NETWORK_NOTES
    if 7 in args.scenario_list:
        out += [
            "While PostgreSQL is down (scenario 7), records wait and are retried with backoff (up to",
            "5 s apart), nothing is committed past them and `/health/ready` answers 503 naming the",
            f"database: a stall of the {DATABASE_DOWN_S:.0f} s outage, plus crash recovery and the",
            "backoff, is the design, not a defect.",
            "",
        ]
    if len(results) < planned:
        out += [f"**Incomplete:** {len(results)} of {planned} runs so far.", ""]
    if failed:
        out += [
            f"**{len(failed)} of {len(results)} rows fail.** Each is a defect; the evidence is below.",
            "",
        ]
    else:
        out += [f"**All {len(results)} rows pass.**", ""]
    out += ["## Runs", ""]
    for r in results:
        out += [
            f"### {r.scenario}. {r.title}, {r.guarantee}: {'pass' if r.passed else 'FAIL'}",
            "",
            f"{r.elapsed_s:.0f} s; {r.produced:,} orders acknowledged, {r.resent} sends repeated"
            + (
                f" ({', '.join(f'{k} x{v}' for k, v in sorted(r.producer_errors.items()))})"
                if r.producer_errors
                else ""
            )
            + f"; checked by {r.checked_by} ({r.verify_result}); evidence in `{_shown(Path(r.evidence))}`.",
            "",
        ]
        if r.effects is not None:
            out += [effects_line(r.effects), ""]
        for name, messages in sorted(r.warning_messages.items()):
            if messages:
                out += [
                    f"Instance {name}'s most frequent warnings after the fault: "
                    + "; ".join(f"`{m}` x{n}" for m, n in messages.items())
                    + ".",
                    "",
                ]
        if not r.passed:
            out += ["Fails: " + "; ".join(r.failures()) + ".", ""]
        if r.unexpected_exits:
            out += ["Exits nobody asked for: " + "; ".join(r.unexpected_exits) + ".", ""]
        out += [
            "```text",
            *(f"+{at:6.1f}s  {text}" for at, text in r.events if not text.startswith("scenario ")),
            "```",
            "",
        ]
        if not r.passed:
            out += ["Service log (warnings and errors, last lines):", "", "```text"]
            out += [line[:400] for line in evidence_lines(r)]
            out += ["```", ""]
    out.append(f"(The pause of scenario 5 is {PAUSE_S:.0f} s.)")
    return "\n".join(out) + "\n"


# What the network rows (9-13) found while they were written, and the client settings they led to;
# the numbers are from the development runs of 2026-12-07 named here, the table above is this run's.
NETWORK_NOTES = [
    "Reading the network rows (9-13): a blackhole is noticed by nothing but a request's timeout",
    "(aiokafka has no TCP keepalive or read timeout of its own). The broker itself is healthy to the",
    "cluster, so its leaderships do not move: the partitions it leads wait for the link whatever the",
    "client does, and the stall of rows 10 and 11 is the fault's 30 s. Lifting the blackhole closes",
    "the connections it held (Toxiproxy's cleanup, as a healed partition whose peer reset them would),",
    "so requests fail at once and are retried on new connections. A blackhole to the group coordinator",
    "expels both instances after the session timeout (10 s): at-least-once then processes again what",
    "was done but not committed (the duplicates of rows 10 and 11), exactly-once fences the old",
    "producers and repeats nothing.",
    "",
    "What these rows found, fixed before this run:",
    "",
    "- *At-least-once, row 10:* an expelled instance's revoke retried a commit the group refused",
    "  (`CommitFailedError`, a newer generation) every 0.5 s for the whole 10 s drain before it could",
    "  rejoin: 34 warnings and a 10 s longer rebalance. A refused commit in a drain now ends it at once",
    "  (the new owner processes those records again anyway), and a run of failed commit rounds is one",
    "  warning (`kafka_delivery/guarantees/at_least_once.py`, `GroupMovedOn`). Warnings of instance a",
    "  after the fault: 46 before, 12 after.",
    "- *Exactly-once, row 11:* a producer re-created after its transaction commit timed out got its",
    "  producer id only after the expelled instance had revoked the partition; stored anyway, it was",
    "  fenced by the other instance, handed out again when the partition came back, and the partition",
    "  stopped for good (548 s stall, 2 manual restarts); the same race let one transaction carry",
    "  1,222 records twice (two rewinds into one open transaction: `kafka-dump-log` showed both copies",
    "  under one producer epoch, no marker between). A close of a partition's producers now waits",
    "  (bounded) for its opens in flight, and an open that a close overtook never lands",
    "  (`kafka_delivery/guarantees/transactional_producers.py`). Rows 10 and 11 in both guarantees",
    "  passed again after it (stalls 30.0-32.7 s, 0 duplicates in exactly-once).",
    "",
    "The client settings these rows decide, and why they stay:",
    "",
    "- `ORDER_SERVICE_KAFKA__REQUEST_TIMEOUT_MS` stays 30000. Rows 10, 11 and 13 run again with",
    "  10000: the blackhole stalls were 29.9-34.2 s (30 s: 30.0-32.7 s), at-least-once duplicates 33",
    "  and 494 (30 s: 25 and 493). A shorter timeout notices a blackhole sooner but cannot shorten it,",
    "  since nothing fails over; it does cut into what a slow link may carry: a fetch response of",
    "  `max_partition_fetch_bytes` (1 MB) takes 10 s at 100 KB/s, so 10 s is the edge of row 13.",
    "- `ORDER_SERVICE_CONSUMER__SESSION_TIMEOUT_MS` stays 10000. A session longer than a coordinator",
    "  blackhole (Kafka's own default is 45 s) would keep both members through row 11 and spare its",
    "  at-least-once repeats (493 and 3,800 of 100,000 in two runs), but a dead instance's",
    "  partitions would then wait 45 s instead of 10 (row 1's stalls are 12-16 s): losing an instance",
    "  is the more common fault.",
    "  Deployments on a flaky network may raise it; the trade is this one.",
    "",
]


def _pg_version() -> str:
    versions = sorted((p.name for p in Path("/usr/lib/postgresql").glob("*") if p.name.isdigit()), key=int)
    return versions[-1] if versions else "(not installed)"


def _full(args: argparse.Namespace) -> bool:
    return bool(
        args.orders == 100_000
        and args.scenario_list == sorted(SCENARIOS)
        and args.guarantee_list == list(GUARANTEES)
        and args.out.resolve() == DEFAULT_OUT
    )
