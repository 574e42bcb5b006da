"""The I/O-bound table, its ratios and its chart in docs/benchmarks.md."""

import statistics
from pathlib import Path

import matplotlib.pyplot as plt

from bench.throughput.measure import IoInfo, Run, shown
from bench.throughput.rounds import per_round, verdict

RATIOS = (("key", "partition"), ("key", "pyrallel-key"))


def by_cell(runs: list[Run]) -> dict[tuple[str, int], Run]:
    """The I/O-bound runs by (contender, ms), from their names io-<ms>ms-<contender>."""
    found = {}
    for run in runs:
        if run.name.startswith("io-"):
            ms, contender = run.name.removeprefix("io-").split("ms-", 1)
            found[contender, int(ms)] = run
    return found


def table(runs: list[Run], io: IoInfo) -> str:
    cells, latencies = by_cell(runs), io["latencies_ms"]
    header = " | ".join(f"{ms} ms: rec/s | p99 (ms) | RSS (MB)" for ms in latencies)
    lines = [f"| contender | {header} |", "|---|" + "---:|" * 3 * len(latencies)]
    for contender in io["contenders"]:
        if contender in io["not_run"]:
            values = [f"not run: {io['not_run'][contender]}"] + [""] * (3 * len(latencies) - 1)
        else:
            values = [
                shown(run[field]) if run else "n/a"
                for ms in latencies
                for run in [cells[contender, ms].as_dict() if (contender, ms) in cells else None]
                for field in ("throughput_rps", "latency_p99_ms", "peak_rss_mb")
            ]
        lines.append(f"| {contender} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def ratios(runs: list[Run], io: IoInfo) -> str:
    cells, latencies = by_cell(runs), io["latencies_ms"]
    lines = [
        "| records/s | " + " | ".join(f"{ms} ms" for ms in latencies) + " |",
        "|---|" + "---:|" * len(latencies),
    ]
    for a, b in RATIOS:
        values = [
            f"{statistics.median(per_round(cells[a, ms], cells[b, ms])):.2f} x"
            if (a, ms) in cells and (b, ms) in cells
            else "n/a"
            for ms in latencies
        ]
        lines.append(f"| {a} / {b} | " + " | ".join(values) + " |")
    return "\n".join(lines)


# Issue 12's I/O-bound targets: (what, contender a, contender b or a rate, ms, at least).
TARGETS: tuple[tuple[str, str, str | float, int, float], ...] = (
    ("key ≥ 10 x partition at 10 ms", "key", "partition", 10, 10.0),
    ("key ≥ 1.0 x pyrallel-key at 10 ms", "key", "pyrallel-key", 10, 1.0),
    ("key ≥ 5,000 records/s at 100 ms", "key", 5_000.0, 100, 1.0),
    ("key ≥ 0.9 x partition at 0 ms", "key", "partition", 0, 0.9),
)


def targets(runs: list[Run], io: IoInfo) -> str:
    cells = by_cell(runs)
    rows = []
    for what, a, b, ms, want in TARGETS:
        if (a, ms) not in cells or (isinstance(b, str) and (b, ms) not in cells):
            rows.append(f"| {what} | not in these results |")
            continue
        run = cells[a, ms]
        result = (
            verdict(per_round(run, cells[b, ms]), want)
            if isinstance(b, str)
            else verdict(run.rounds or [run.throughput_rps], b, " records/s")
        )
        rows.append(f"| {what} | {result} |")
    service = [r for (c, _), r in cells.items() if c in ("key", "partition")]
    peak = max((r.peak_rss_mb or 0.0 for r in service), default=0.0)
    met = "met" if peak < 200 else "not met"
    rows.append(f"| order-service peak RSS < 200 MB at every latency | {peak:.0f} MB — {met} |")
    return "| target | result |\n|---|---|\n" + "\n".join(rows)


def section(runs: list[Run], io: IoInfo, chart_name: str) -> str:
    latencies = ", ".join(str(ms) for ms in io["latencies_ms"])
    return (
        f"### I/O-bound\n\nA simulated call of {latencies} ms per order, {io['keys']:,} keys on "
        f"{io['partitions']} partitions. order-service `key` at 100 ms runs with "
        f"`ORDER_SERVICE_PROCESSING__MAX_IN_FLIGHT={io['key_max_in_flight_100ms']}`.\n\n"
        f"{table(runs, io)}\n\n{ratios(runs, io)}\n\n![I/O-bound throughput]({chart_name})\n\n"
        f"#### I/O-bound targets\n\n{targets(runs, io)}"
    )


def chart(runs: list[Run], io: IoInfo, path: Path) -> None:
    cells, latencies = by_cell(runs), io["latencies_ms"]
    shown_contenders = [c for c in io["contenders"] if any((c, ms) in cells for ms in latencies)]
    width = 0.8 / max(1, len(shown_contenders))
    fig, ax = plt.subplots(figsize=(10.5, 4.5))
    for i, contender in enumerate(shown_contenders):
        rates = [cells[contender, ms].throughput_rps if (contender, ms) in cells else 0 for ms in latencies]
        positions = [x + (i - (len(shown_contenders) - 1) / 2) * width for x in range(len(latencies))]
        bars = ax.bar(positions, rates, width, label=contender)
        ax.bar_label(bars, labels=[f"{r:,.0f}" if r else "" for r in rates], padding=2, fontsize=6)
    ax.set_xticks(range(len(latencies)), [f"{ms} ms" for ms in latencies])
    ax.set_yscale("log")
    ax.set_xlabel("simulated call per order")
    ax.set_ylabel("records per second (log scale)")
    ax.set_title(
        f"I/O-bound: {io['keys']:,} keys on {io['partitions']} partitions, same machine, same broker"
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
