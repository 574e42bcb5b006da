"""The effects table and issue 25's targets in docs/benchmarks.md: the stock processor in PostgreSQL."""

from bench.throughput.measure import EffectsInfo, Run, shown
from bench.throughput.rounds import per_round, verdict

CONTENDERS = ("effects-inbox", "effects-no-inbox", "effects-naive")
# (what, contender, the contender it is compared with or None for a rate, at least).
TARGETS: tuple[tuple[str, str, str | None, float], ...] = (
    ("effects-inbox ≥ 5,000 orders/s", "effects-inbox", None, 5_000.0),
    ("effects-inbox ≥ 0.7 x effects-no-inbox", "effects-inbox", "effects-no-inbox", 0.7),
    ("effects-inbox ≥ 5 x effects-naive", "effects-inbox", "effects-naive", 5.0),
)


def rows(runs: list[Run]) -> dict[str, Run]:
    return {run.name: run for run in runs if run.name in CONTENDERS}


def details(effects: EffectsInfo, name: str) -> dict[str, object]:
    """CPU and ledger check of the run a row shows (its median run)."""
    return effects["runs"].get(effects["rows"].get(name, ""), {})


def table(runs: list[Run], effects: EffectsInfo) -> str:
    by_name = rows(runs)
    lines = [
        "| contender | records | records/s | p99 (ms) | peak RSS (MB) | contender CPU (µs/record) "
        "| PostgreSQL CPU (µs/record) | orders accepted | rounds (records/s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in CONTENDERS:
        if name in effects["failed"]:
            lines.append(f"| {name} | {effects['failed'][name]} |" + " |" * 7)
            continue
        if name not in by_name:
            continue
        run, row = by_name[name].as_dict(), details(effects, name)
        ledger = row.get("ledger")
        accepted = f"{ledger['accepted']:,}" if isinstance(ledger, dict) else None
        each = ", ".join(shown(r) for r in by_name[name].rounds or ()) or "one run"
        lines.append(
            f"| {name} | {run['records']:,} | {shown(run['throughput_rps'])} "
            f"| {shown(run['latency_p99_ms'])} | {shown(run['peak_rss_mb'])} "
            f"| {shown(row.get('contender_us'))} | {shown(row.get('postgres_us'))} "
            f"| {shown(accepted)} | {each} |"
        )
    return "\n".join(lines)


def target(runs: list[Run], contender: str, other: str | None, want: float) -> str:
    """The median of the rounds against `want`: a rate, or a ratio taken within each round."""
    by_name = rows(runs)
    if contender not in by_name or (other is not None and other not in by_name):
        return "not in these results"
    run = by_name[contender]
    if other is None:
        return verdict(run.rounds or [run.throughput_rps], want, " records/s")
    return verdict(per_round(run, by_name[other]), want)


def targets(runs: list[Run]) -> str:
    lines = [f"| {what} | {target(runs, a, b, want)} |" for what, a, b, want in TARGETS]
    return "| target | result |\n|---|---|\n" + "\n".join(lines)


def section(runs: list[Run], effects: EffectsInfo) -> str:
    records = ", ".join(f"{name} {n:,}" for name, n in effects["records"].items())
    return (
        "### Effects\n\nThe stock processor (`order_service.processors.stock:processor`) in exactly-once "
        "delivery: per order the rules, then one statement that reserves its items in `stock` and "
        "appends its row to `order_ledger`. `effects-inbox` is the service with its inbox (effects "
        "exactly once), `effects-no-inbox` the same with `ORDER_SERVICE_EFFECTS__INBOX=false` (effects "
        "at least once), `effects-naive` a loop written by hand with the same SQL that runs each order "
        "in a transaction of its own, then publishes its outcome and commits its offset "
        "(bench/throughput/contenders/naive_effects.py). PostgreSQL is `scripts/postgres` on "
        "127.0.0.1:20532 (data in `.cache/bench-postgres`, fsync on), on the same two cores. Each run "
        f"gets a fresh database: {effects['skus']:,} SKUs, each stocked with "
        f"{effects['stock_share']:.0%} of what the run's orders want of it (rounded up), so that late "
        f"orders of a SKU may be rejected. Records per run: {records}. After each run SQL checks the "
        "ledger: one row per input (topic, partition, offset) and per order; for `effects-inbox` "
        "exactly one, as many inbox rows, and the stock reduced by exactly what the accepted orders "
        "wanted; a failed check fails the contender. CPU per record: user + system time of the "
        "contender's process and of the PostgreSQL server (postmaster, backends, WAL writer; "
        "`/proc`), from the first committed record to the last.\n\n"
        f"{table(runs, effects)}\n\n#### Effects targets\n\n{targets(runs)}"
    )
