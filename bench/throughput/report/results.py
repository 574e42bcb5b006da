"""Benchmark results: JSON (latest and timestamped), and the table and chart in docs/benchmarks.md."""

import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before cpu.py, io_bound.py and scale.py import pyplot

from bench.throughput.measure import Results, Run
from bench.throughput.report import cpu, effects, io_bound, scale

ROOT = Path(__file__).parents[3]
PAGE = "benchmarks.md"
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


def write_results(
    measured: Results, requested: int, *, out_dir: Path, docs: bool, docs_dir: Path = ROOT / "docs"
) -> None:
    """Write the JSON, then print the tables and render the docs from what it holds.

    The JSON keeps a run's figures to one decimal (`Run.as_dict`). Tables made from the unrounded
    figures differed from a re-render of the same results (`python -m bench.throughput.report`) in
    their last digits: 12 cells of docs/benchmarks.md, such as an overhead of 12.6 against 12.5
    µs (21.24 - 8.66 against 21.2 - 8.7). Rendered from the stored figures, both are the same.
    """
    machine_info = machine()
    result = {
        "runs": [r.as_dict() for r in measured.runs],
        "io": measured.io,
        "peers": measured.peers,
        "scale_out": measured.scale,
        "effects": measured.effects,
        "machine": machine_info,
        "requested_records": requested,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    stored = json.dumps(result, indent=2) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in ("latest.json", f"{stamp}.json"):
        (out_dir / name).write_text(stored)
    results = read_results(json.loads(stored))
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
        render_docs(results, machine_info, docs_dir)


def read_results(stored: dict[str, Any]) -> Results:
    """The results as a results file holds them (`write_results`)."""
    return Results(
        runs=[Run(**r) for r in stored["runs"]],
        io=stored.get("io"),
        peers=stored.get("peers"),
        scale=stored.get("scale_out"),
        effects=stored.get("effects"),
    )


def render_docs(results: Results, machine_info: dict[str, object], docs_dir: Path = ROOT / "docs") -> None:
    """The generated part of benchmarks.md in `docs_dir`, between its markers, and its charts."""
    runs, io, scale_out = results.runs, results.io, results.scale
    cpu_runs = cpu.cpu_bound(runs)
    cpu.chart(cpu_runs, docs_dir / "benchmarks.png")
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
        io_bound.chart(runs, io, docs_dir / IO_CHART)
        sections.append(io_bound.section(runs, io, IO_CHART))
    if results.effects:
        sections.append(effects.section(runs, results.effects))
    if scale_out:
        scale.chart(runs, scale_out, docs_dir / SCALE_CHART)
        sections.append(scale.section(runs, scale_out, machine_info["cores"], SCALE_CHART))
    generated = f"{START}\n" + "\n\n".join(sections) + f"\n\nMachine: {about}.\n{END}"
    page = docs_dir / PAGE
    text = page.read_text()
    page.write_text(
        re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: generated, text, flags=re.DOTALL)
    )
