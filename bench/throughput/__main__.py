"""`make bench`: each contender in turn, on its own copy of the input, against a fresh local broker."""

import argparse
import asyncio
import subprocess
from contextlib import nullcontext
from pathlib import Path

from bench.throughput import harness
from bench.throughput.brokers import local_kafka
from bench.throughput.cpu_bound.runs import benchmark_cpu, benchmark_half_load
from bench.throughput.effects.runs import benchmark_effects
from bench.throughput.harness import ROOT
from bench.throughput.io_bound.runs import CONTENDERS, benchmark_io
from bench.throughput.measure import Results, Run, ScaleInfo
from bench.throughput.report import write_results
from bench.throughput.scale_out import (
    CLUSTER_INSTANCES,
    INSTANCES,
    PARTITIONS,
    SMOKE_BELOW,
    SMOKE_INSTANCES,
    benchmark_scale,
)

PARTS = {
    "cpu": "the CPU-bound table, peers included",
    "peers": "the peer frameworks and order-service in both guarantees",
    "io": "the I/O-bound table",
    "effects": "the effects table: the stock processor in PostgreSQL (scripts/postgres on port 20532)",
    "scale": "the scale-out curve, on one broker and on a 3-broker cluster",
    "half": "order-service at-least-once at full speed; it and the references at half of it, three times",
}


async def benchmark(records: int, results: Results, *, only: str | None, io_names: tuple[str, ...]) -> None:
    """The parts on one broker (or --bootstrap): all of them, or `only` one."""
    if only == "half":
        await benchmark_half_load(records, results)
    if only in (None, "cpu", "peers"):
        await benchmark_cpu(records, results, peers_only=only == "peers")
    if only in (None, "io"):
        io_runs, results.io = await benchmark_io(records, io_names)
        results.runs.extend(io_runs)
    if only in (None, "effects"):
        await benchmark_effects(records, results)
    if only in (None, "scale"):
        smoke = records < SMOKE_BELOW
        runs, scale = await benchmark_scale(
            records,
            bootstrap=harness.BOOTSTRAP,
            brokers=len(harness.BOOTSTRAP.split(",")),
            instances=SMOKE_INSTANCES if smoke else INSTANCES,
            prefix="scale-out",
        )
        results.runs.extend(runs)
        results.scale = ScaleInfo(partitions=PARTITIONS, runs=scale, not_run={})


def scale_on_cluster(args: argparse.Namespace, scale: ScaleInfo) -> list[Run]:
    """The scale-out runs on a 3-broker cluster: --cluster-bootstrap, or one started here on 9092-9094."""
    names = [f"scale-out-cluster-{n}" for n in CLUSTER_INSTANCES]
    why = ""
    if args.records < SMOKE_BELOW:
        names.append("scale-out-4")
        why = f"skipped in the smoke run (fewer than {SMOKE_BELOW:,} records)"
    elif args.bootstrap and not args.cluster_bootstrap:
        why = "skipped: --bootstrap given without --cluster-bootstrap"
    if why:
        print(f"{', '.join(names)}: {why}", flush=True)
        scale["not_run"].update(dict.fromkeys(names, why))
        return []
    cluster = nullcontext(args.cluster_bootstrap) if args.cluster_bootstrap else local_kafka(3)
    try:
        with cluster as bootstrap:
            runs, scale_runs = asyncio.run(
                benchmark_scale(
                    args.records,
                    bootstrap=bootstrap,
                    brokers=3,
                    instances=CLUSTER_INSTANCES,
                    prefix="scale-out-cluster",
                )
            )
    except subprocess.CalledProcessError as failed:
        scale["not_run"].update(dict.fromkeys(names, f"the 3-broker cluster did not start: {failed}"))
        return []
    scale["runs"].update(scale_runs)
    return runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--docs", action="store_true", help="also rewrite the tables and charts in docs/")
    parser.add_argument(
        "--bootstrap",
        help="comma-separated brokers of a running cluster to use; default: a fresh local broker",
    )
    parser.add_argument(
        "--cluster-bootstrap",
        help="the running 3-broker cluster of the scale-out runs; default: one started on 9092-9094",
    )
    parser.add_argument(
        "--only",
        choices=tuple(PARTS),
        help="run one part: " + "; ".join(f"{k}: {v}" for k, v in PARTS.items()),
    )
    parser.add_argument(
        "--contenders",
        type=lambda names: tuple(names.split(",")),
        default=CONTENDERS,
        help=f"comma-separated I/O-bound contenders to run, of: {','.join(CONTENDERS)}",
    )
    args = parser.parse_args()
    if unknown := set(args.contenders) - set(CONTENDERS):
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    if args.docs and (args.only or args.contenders != CONTENDERS):
        parser.error("--docs needs every run: leave out --only and --contenders")
    return args


def main() -> None:
    args = parse_args()
    results = Results()
    with nullcontext(args.bootstrap) if args.bootstrap else local_kafka(1) as bootstrap:
        harness.BOOTSTRAP = bootstrap
        asyncio.run(benchmark(args.records, results, only=args.only, io_names=args.contenders))
    if results.scale is not None:
        results.runs.extend(scale_on_cluster(args, results.scale))
    write_results(results, args.records, out_dir=args.out, docs=args.docs)


if __name__ == "__main__":
    main()
