"""Runs in rounds: every figure that sets or misses a target is the median of several runs.

In each round every planned contender runs once, in the same order, so a ratio can be taken
within a round (the machine is shared and noisy: neighbouring runs see the same conditions).
A contender's row is its median run by throughput; the row keeps every round's throughput.
"""

import statistics
from dataclasses import dataclass, replace

from bench.throughput.harness import ROOT, Contender, run_contender
from bench.throughput.measure import Run

ROUNDS = 3


@dataclass(frozen=True)
class Planned:
    contender: Contender
    records: int
    rounds: int = ROUNDS
    keys: int | None = None
    # A framework the bench installs: a failed run lists it as not run instead of ending the bench.
    optional: bool = False


def last_log_line(name: str) -> str:
    lines = (ROOT / "bench" / "results" / f"{name}.log").read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def median_run(name: str, runs: list[Run]) -> Run:
    """The median run by throughput, named `name`, with every run's throughput in round order."""
    middle = sorted(runs, key=lambda r: r.throughput_rps)[len(runs) // 2]
    return replace(middle, name=name, rounds=[r.throughput_rps for r in runs] if len(runs) > 1 else None)


async def in_rounds(planned: list[Planned], not_run: dict[str, str]) -> list[Run]:
    """Round n runs each contender planned for at least n rounds; an optional one that fails is
    added to `not_run` with the reason and left out of later rounds and of the results."""
    done: dict[str, list[Run]] = {p.contender.name: [] for p in planned}
    for n in range(1, max((p.rounds for p in planned), default=0) + 1):
        for p in planned:
            name = p.contender.name
            if p.rounds < n or name in not_run:
                continue
            label = f"{name}-{n}" if p.rounds > 1 else name
            try:
                done[name].append(await run_contender(p.contender, p.records, keys=p.keys, label=label))
            except RuntimeError as failed:
                if not p.optional:
                    raise
                not_run[name] = f"{failed}: {last_log_line(label)}"
                print(f"{name} not run: {not_run[name]}", flush=True)
    return [median_run(name, runs) for name, runs in done.items() if runs and name not in not_run]


def per_round(a: Run, b: Run) -> list[float]:
    """a's throughput over b's in each round both ran; the one ratio of their rows otherwise."""
    if a.rounds and b.rounds and len(a.rounds) == len(b.rounds):
        return [x / y for x, y in zip(a.rounds, b.rounds, strict=True)]
    return [a.throughput_rps / b.throughput_rps]


def verdict(values: list[float], want: float, unit: str = " x") -> str:
    """The median of `values` against `want`, with every round's value when there are several."""
    value = statistics.median(values)
    fmt = "{:,.0f}" if unit != " x" else "{:.2f}"
    each = f" (median of {len(values)}: " + ", ".join(fmt.format(v) for v in sorted(values)) + ")"
    return (
        fmt.format(value)
        + unit
        + (each if len(values) > 1 else "")
        + f" — {'met' if value >= want else 'not met'}"
    )
