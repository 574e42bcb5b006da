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

from bench import report_io
from bench.measure import IoInfo, Run, shown

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
IO_CHART = "benchmarks-io.png"


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
        "kafka": (ROOT / "kafka.version").read_text().strip(),
        "broker": "single KRaft node on the same machine (scripts/kafka)",
    }


def table(runs: list[Run]) -> str:
    lines = [
        "| contender | records | throughput (rec/s) | latency p50 (ms) | latency p99 (ms) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        d = run.as_dict()
        lines.append(
            f"| {run.name} | {run.records:,} | "
            + " | ".join(
                shown(d[k]) for k in ("throughput_rps", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb")
            )
            + " |"
        )
    return "\n".join(lines)


def targets(runs: list[Run]) -> str:
    by = {r.name: r for r in runs}

    def ratio(a: str, b: str, want: float) -> str:
        value = by[a].throughput_rps / by[b].throughput_rps
        return f"{value:.2f} x — {'met' if value >= want else 'not met'}"

    half = by["order-service-alo-half-load"]
    peak = max(r.peak_rss_mb or 0 for r in runs if r.name.startswith("order-service"))
    rows = [
        ("order-service-alo ≥ 10 x seed-naive", ratio("order-service-alo", "seed-naive", 10)),
        ("order-service-alo ≥ 10 x faststream-plain", ratio("order-service-alo", "faststream-plain", 10)),
        (
            "order-service-alo ≥ 0.6 x aiokafka-batch-copier",
            ratio("order-service-alo", "aiokafka-batch-copier", 0.6),
        ),
        ("order-service-eos ≥ 0.8 x order-service-alo", ratio("order-service-eos", "order-service-alo", 0.8)),
        (
            "p99 at half load ≤ 50 ms (at-least-once)",
            f"{half.latency_p99_ms:.0f} ms (p50 {half.latency_p50_ms:.0f} ms) — "
            f"{'met' if (half.latency_p99_ms or 1e9) <= 50 else 'not met'}",
        ),
        ("peak RSS of the service ≤ 200 MB", f"{peak:.0f} MB — {'met' if peak <= 200 else 'not met'}"),
    ]
    return "| target | result |\n|---|---|\n" + "\n".join(f"| {t} | {r} |" for t, r in rows)


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


def cpu_bound(runs: list[Run]) -> list[Run]:
    return [r for r in runs if not r.name.startswith("io-")]


def write_results(runs: list[Run], requested: int, *, io: IoInfo | None, out_dir: Path, docs: bool) -> None:
    result = {
        "runs": [r.as_dict() for r in runs],
        "io": io,
        "machine": machine(),
        "requested_records": requested,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in ("latest.json", f"{stamp}.json"):
        (out_dir / name).write_text(json.dumps(result, indent=2) + "\n")
    if cpu := cpu_bound(runs):
        print(table(cpu))
    if io:
        print(report_io.table(runs, io), report_io.ratios(runs, io), sep="\n\n")
    if docs:
        render_docs(runs, result["machine"], io)  # type: ignore[arg-type]


def render_docs(runs: list[Run], machine_info: dict[str, object], io: IoInfo | None) -> None:
    cpu = cpu_bound(runs)
    chart(cpu, ROOT / "docs" / "benchmarks.png")
    about = ", ".join(f"{k}: {v}" for k, v in machine_info.items())
    io_section = ""
    if io:
        report_io.chart(runs, io, ROOT / "docs" / IO_CHART)
        io_section = report_io.section(runs, io, IO_CHART) + "\n\n"
    generated = (
        f"{START}\n{table(cpu)}\n\n![throughput](benchmarks.png)\n\n### Targets\n\n{targets(cpu)}\n\n"
        f"{io_section}Machine: {about}.\n{END}"
    )
    text = DOCS.read_text()
    DOCS.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), generated, text, flags=re.DOTALL))


if __name__ == "__main__":
    # Re-render docs/benchmarks.md from bench/results/latest.json.
    latest = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    render_docs([Run(**r) for r in latest["runs"]], latest["machine"], latest.get("io"))
