"""The CPU-bound table, peers included, its targets and its chart in docs/benchmarks.md."""

from pathlib import Path

import matplotlib.pyplot as plt

from bench.throughput.cpu_bound.domain_work import NAME as DOMAIN_WORK
from bench.throughput.cpu_bound.peers import FRAMEWORKS, LOOPS
from bench.throughput.cpu_bound.peers import NAMES as PEER_NAMES
from bench.throughput.cpu_bound.runs import HALF_LOADED
from bench.throughput.measure import PeerInfo, Run, shown
from bench.throughput.rounds import per_round, verdict

HALF_LOAD = "order-service-alo" + HALF_LOADED
HALF_LOAD_P99_MS = 20  # issue 28 (it was 50)
CPU_TARGETS_US = ((DOMAIN_WORK, 15), ("order-service-alo", 25), ("order-service-eos", 25))  # issue 28


def cpu_bound(runs: list[Run]) -> list[Run]:
    return [r for r in runs if not r.name.startswith(("io-", "scale-out-", "effects-"))]


def service_in_same_guarantee(name: str) -> str:
    return (
        "order-service-eos"
        if name.endswith("-eos") or name == "kafka-java-txn-copier"
        else "order-service-alo"
    )


def vs_service(run: Run, by: dict[str, Run]) -> str:
    """order-service's throughput in the same guarantee divided by this run's."""
    service = by.get(service_in_same_guarantee(run.name))
    if HALF_LOADED in run.name or run.name == DOMAIN_WORK or service is None:
        return "n/a"
    return f"{service.throughput_rps / run.throughput_rps:.2f} x"


# Rows that do not do the order work: a copier and Kafka's Java tools. Less the domain work, their CPU
# would read as an overhead they do not have; their whole CPU per record is the Kafka client's cost.
WITHOUT_ORDER_WORK = ("aiokafka-batch-copier", "kafka-java-")


def overhead(run: Run, domain: Run | None) -> float | None:
    """The run's CPU per record beyond the domain work's: what its framework and Kafka client cost."""
    if (
        run.name == DOMAIN_WORK
        or run.name.startswith(WITHOUT_ORDER_WORK)
        or domain is None
        or None in (run.cpu_us_per_record, domain.cpu_us_per_record)
    ):
        return None
    return run.cpu_us_per_record - domain.cpu_us_per_record  # type: ignore[operator]


def table(runs: list[Run], peers: PeerInfo | None) -> str:
    by = {r.name: r for r in runs}
    lines = [
        "| contender | records | throughput (rec/s) | latency p50 (ms) | latency p99 (ms) | peak RSS (MB) "
        "| CPU (µs/record) | framework overhead (µs/record) "
        "| order-service ÷ this, same guarantee | rec/s in each round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        d = run.as_dict()
        keys = ("throughput_rps", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb", "cpu_us_per_record")
        extra = overhead(run, by.get(DOMAIN_WORK))
        values = [*(shown(d[k]) for k in keys), shown(None if extra is None else round(extra, 1))]
        lines.append(
            f"| {run.name} | {run.records:,} | "
            + " | ".join(values)
            + f" | {vs_service(run, by)} | "
            + (", ".join(shown(r) for r in run.rounds) if run.rounds else "one run")
            + " |"
        )
    for name, why in (peers or {"not_run": {}})["not_run"].items():
        lines.append(f"| {name} | not run: {why} |" + " |" * 8)
    return "\n".join(lines)


def cpu_note(runs: list[Run]) -> str:
    """What the CPU columns measure."""
    if not any(r.cpu_us_per_record is not None for r in runs):
        return ""
    return (
        "CPU: user + system time of the contender's process and its children (/proc, sampled every "
        "0.1 s) from its first output to its last, per output record; none for a window under 0.5 s. "
        f"`{DOMAIN_WORK}`: the order work alone (bench/throughput/contenders/order_work.py over the "
        "same generated orders, in the bench's process, no Kafka; its rate is orders per second of "
        "that loop). Framework overhead: a contender's CPU per record minus the domain work's (none for "
        "the copier and Kafka's Java tools, which do no order work)."
    )


def peers_note(peers: PeerInfo | None) -> str:
    """Which versions of the peer frameworks ran, and where."""
    if not peers or not peers["versions"]:
        return ""
    venvs = "; ".join(
        f"{venv}: " + ", ".join(f"{name} {version}" for name, version in packages.items())
        for venv, packages in peers["versions"].items()
    )
    return (
        "The peer frameworks (orange in the chart) and the confluent-kafka loops written by hand "
        "(green) do order-service's work (bench/throughput/contenders/order_work.py), "
        f"each in a venv of its own under .cache/bench-venvs (bench/throughput/cpu_bound/peers.py). {venvs}."
    )


def targets(runs: list[Run], peers: PeerInfo | None) -> str:
    by = {r.name: r for r in runs}
    not_run = (peers or {"not_run": {}})["not_run"]

    def ratio(a: str, b: str, want: float) -> str:
        if b in not_run or b not in by:
            return f"{b} not run: {not_run.get(b, 'not in these results')}"
        return verdict(per_round(by[a], by[b]), want)

    def cpu_at_most(name: str, want: float) -> tuple[str, str]:
        """A row's CPU per record (its median run's, by throughput) against `want` µs."""
        target = f"{name}: CPU ≤ {want:g} µs per record"
        cpu = by[name].cpu_us_per_record if name in by else None
        if cpu is None:
            return target, "not measured in these results"
        return target, f"{cpu:.1f} µs — {'met' if cpu <= want else 'not met'}"

    half = by[HALF_LOAD]
    peak = max(r.peak_rss_mb or 0 for r in runs if r.name.startswith("order-service"))
    pairs = [
        ("order-service-alo", "seed-naive", 10),
        ("order-service-alo", "faststream-plain", 10),
        ("order-service-alo", "aiokafka-batch-copier", 0.6),
        ("order-service-eos", "order-service-alo", 0.8),
        *((service_in_same_guarantee(peer), peer, 1.0) for peer in FRAMEWORKS),
        # Issue 28: ahead of the loop a user would write by hand with confluent-kafka.
        *((service_in_same_guarantee(loop), loop, 1.2) for loop in LOOPS),
    ]
    rows = [(f"{a} ≥ {want:g} x {b}", ratio(a, b, want)) for a, b, want in pairs]
    rows += [cpu_at_most(name, want) for name, want in CPU_TARGETS_US]
    repeats = sorted(r.latency_p99_ms or 0.0 for r in runs if r.name.startswith(f"{HALF_LOAD}-"))
    spread = f", median of {len(repeats)}: " + ", ".join(f"{p:.0f}" for p in repeats) if repeats else ""
    references = [
        f"{r.name.removesuffix(HALF_LOADED)} {r.latency_p99_ms:.0f} ms (p50 {r.latency_p50_ms:.0f})"
        for r in runs
        if r.name.endswith(HALF_LOADED) and r.name != HALF_LOAD and r.latency_p99_ms is not None
    ]
    rows += [
        (
            f"p99 at half load ≤ {HALF_LOAD_P99_MS} ms (at-least-once)",
            f"{half.latency_p99_ms:.0f} ms (p50 {half.latency_p50_ms:.0f} ms{spread}) — "
            f"{'met' if (half.latency_p99_ms or 1e9) <= HALF_LOAD_P99_MS else 'not met'}"
            + (f"; at the same rate: {', '.join(references)}" if references else ""),
        ),
        ("peak RSS of the service ≤ 200 MB", f"{peak:.0f} MB — {'met' if peak <= 200 else 'not met'}"),
    ]
    return "| target | result |\n|---|---|\n" + "\n".join(f"| {t} | {r} |" for t, r in rows)


def color(name: str) -> str:
    if name in FRAMEWORKS:
        return "#dd8452"
    return "#55a868" if name in PEER_NAMES else "#4c72b0"


def chart(runs: list[Run], path: Path) -> None:
    # domain-work makes no records: its rate would read as a contender's
    shown = [r for r in runs if HALF_LOADED not in r.name and r.name != DOMAIN_WORK]
    colors = [color(r.name) for r in shown]
    fig, ax = plt.subplots(figsize=(9, 5))
    bars = ax.barh([r.name for r in shown], [r.throughput_rps for r in shown], color=colors)
    ax.bar_label(bars, labels=[f"{r.throughput_rps:,.0f}" for r in shown], padding=3, fontsize=8)
    ax.set_xlabel(
        "records per second (higher is better); orange: peer frameworks; green: confluent-kafka loops"
    )
    ax.set_title("Consume → process → produce throughput, same machine, same broker")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
