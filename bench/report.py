"""Benchmark results: JSON (latest and timestamped), and the table and chart in docs/benchmarks.md."""

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.measure import Run

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def machine() -> dict[str, object]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    java = subprocess.run(
        ["java", "-version"], capture_output=True, text=True, check=False
    ).stderr.splitlines()[:1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "java": java[0] if java else None,
        "kafka": "4.4.0",
        "broker": "single KRaft node on the same machine (scripts/kafka)",
    }


def table(runs: list[Run]) -> str:
    def cell(value: object) -> str:
        return (
            "n/a"
            if value is None
            else f"{value:,.0f}"
            if isinstance(value, float) and value >= 100
            else f"{value}"
        )

    lines = [
        "| contender | records | throughput (rec/s) | latency p50 (ms) | latency p99 (ms) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        d = run.as_dict()
        lines.append(
            f"| {run.name} | {run.records:,} | "
            + " | ".join(
                cell(d[k]) for k in ("throughput_rps", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb")
            )
            + " |"
        )
    return "\n".join(lines)


def chart(runs: list[Run], path: Path) -> None:
    shown = [r for r in runs if not r.name.endswith("half-load")]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bars = ax.barh([r.name for r in shown], [r.throughput_rps for r in shown], color="#4c72b0")
    ax.bar_label(bars, labels=[f"{r.throughput_rps:,.0f}" for r in shown], padding=3, fontsize=8)
    ax.set_xlabel("records per second (higher is better)")
    ax.set_title("Consume → process → produce throughput, same machine, same broker")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(runs: list[Run], requested: int, *, out_dir: Path, docs: bool) -> None:
    result = {
        "runs": [r.as_dict() for r in runs],
        "machine": machine(),
        "requested_records": requested,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in ("latest.json", f"{stamp}.json"):
        (out_dir / name).write_text(json.dumps(result, indent=2) + "\n")
    print(table(runs))
    if docs:
        chart(runs, ROOT / "docs" / "benchmarks.png")
        text = DOCS.read_text()
        generated = f"{START}\n{table(runs)}\n\n![throughput](benchmarks.png)\n{END}"
        DOCS.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), generated, text, flags=re.DOTALL))
