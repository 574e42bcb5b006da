"""What a chaos run leaves behind for a reader of a failed row: its result, the progress samples (JSON
lines and CSV), the readiness answers, and the service log lines that the report quotes."""

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from bench.chaos.result import Result
from bench.chaos.run_state import Run
from bench.chaos.service import log_tail


def write_evidence(run: Run, result: Result) -> None:
    (run.evidence / "result.json").write_text(json.dumps(asdict(result), indent=1))
    with (run.evidence / "samples.jsonl").open("w") as out:
        for s in run.samples:
            offsets = None if s.offsets is None else asdict(s.offsets)
            if offsets is not None:
                offsets["stale"] = sorted(offsets["stale"])
            out.write(json.dumps({"at": s.at, "produced": s.produced, "offsets": offsets}) + "\n")
    with (run.evidence / "samples.csv").open("w") as out:
        out.write("at_s,committed,end,produced,end_unknown_for\n")
        for s in run.samples:
            if s.offsets is None:
                out.write(f"{s.at},,,{s.produced},\n")
            else:
                stale = " ".join(map(str, sorted(s.offsets.stale)))
                out.write(f"{s.at},{s.offsets.committed_total},{s.offsets.end_total},{s.produced},{stale}\n")
    (run.evidence / "readiness.json").write_text(json.dumps(run.readiness))


def evidence_lines(result: Result, lines: int = 25) -> Iterator[str]:
    """The service log lines (warnings and errors, and the harness's) behind a failed row."""
    for name in ("a", "b"):
        path = Path(result.evidence) / f"service-{name}.log"
        picked = log_tail(path, lines)
        if picked:
            yield f"instance {name} ({path}):"
            yield from picked
