"""Benchmark results: JSON (latest and timestamped), and the table and chart in docs/benchmarks.md."""

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before cpu.py, io_bound.py and scale.py import pyplot

from bench.throughput.measure import Results
from bench.throughput.report import cpu, effects, io_bound, scale

ROOT = Path(__file__).parents[3]
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
IO_CHART = "benchmarks-io.png"
SCALE_CHART = "benchmarks-scale-out.png"


def machine() -> dict[str, object]:
    cpu_name = next(
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
        "cpu": cpu_name,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "java": java[0] if java else None,
        "kafka": (ROOT / "kafka.version").read_text().strip(),
        "broker": "single KRaft node on the same machine (scripts/kafka)",
    }


def write_results(results: Results, requested: int, *, out_dir: Path, docs: bool) -> None:
    machine_info = machine()
    result = {
        "runs": [r.as_dict() for r in results.runs],
        "io": results.io,
        "peers": results.peers,
        "scale_out": results.scale,
        "effects": results.effects,
        "machine": machine_info,
        "requested_records": requested,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in ("latest.json", f"{stamp}.json"):
        (out_dir / name).write_text(json.dumps(result, indent=2) + "\n")
    runs = results.runs
    if cpu_runs := cpu.cpu_bound(runs):
        print(cpu.table(cpu_runs, results.peers))
    if results.io:
        print(io_bound.table(runs, results.io), io_bound.ratios(runs, results.io), sep="\n\n")
    if results.scale:
        print(scale.table(runs, results.scale, machine_info["cores"]))
    if results.effects:
        print(effects.table(runs, results.effects), effects.targets(runs), sep="\n\n")
    if docs:
        render_docs(results, machine_info)


def render_docs(results: Results, machine_info: dict[str, object]) -> None:
    runs, io, scale_out = results.runs, results.io, results.scale
    cpu_runs = cpu.cpu_bound(runs)
    cpu.chart(cpu_runs, ROOT / "docs" / "benchmarks.png")
    about = ", ".join(f"{k}: {v}" for k, v in machine_info.items())
    cpu_parts = (
        cpu.table(cpu_runs, results.peers),
        cpu.cpu_note(cpu_runs),
        cpu.peers_note(results.peers),
        "![throughput](benchmarks.png)",
        f"### Targets\n\n{cpu.targets(cpu_runs, results.peers)}",
    )
    sections = ["\n\n".join(part for part in cpu_parts if part)]
    if io:
        io_bound.chart(runs, io, ROOT / "docs" / IO_CHART)
        sections.append(io_bound.section(runs, io, IO_CHART))
    if results.effects:
        sections.append(effects.section(runs, results.effects))
    if scale_out:
        scale.chart(runs, scale_out, ROOT / "docs" / SCALE_CHART)
        sections.append(scale.section(runs, scale_out, machine_info["cores"], SCALE_CHART))
    generated = f"{START}\n" + "\n\n".join(sections) + f"\n\nMachine: {about}.\n{END}"
    text = DOCS.read_text()
    DOCS.write_text(
        re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: generated, text, flags=re.DOTALL)
    )
