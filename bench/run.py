"""`make bench`: each contender in turn, on its own copy of the input, against a fresh local broker."""

import argparse
import asyncio
import re
import subprocess
from pathlib import Path

from bench import harness, kafka_io
from bench.harness import (
    BIN,
    KAFKA,
    ROOT,
    SERVICE,
    SERVICE_ENV,
    Contender,
    reap,
    run_contender,
    start,
    topic_env,
)
from bench.io_runs import CONTENDERS, benchmark_io
from bench.measure import IoInfo, Run, from_timestamps
from bench.report import write_results

SLOW_CAP = 20_000  # per-message round-trip contenders: enough records for a steady rate


def contenders() -> list[Contender]:
    python = [str(BIN / "python"), "-m"]
    return [
        Contender("seed-naive", [*python, "bench.contenders.seed_naive"], slow=True),
        Contender(
            "faststream-plain",
            [str(BIN / "faststream"), "run", "bench.contenders.faststream_plain:app"],
            slow=True,
        ),
        Contender("order-service-alo", SERVICE, SERVICE_ENV),
        Contender(
            "order-service-eos", SERVICE, {**SERVICE_ENV, "ORDER_SERVICE_DELIVERY__GUARANTEE": "exactly_once"}
        ),
        Contender("aiokafka-batch-copier", [*python, "bench.contenders.batch_copier"]),
    ]


def java_tool(*args: str) -> tuple[str, float]:
    process, sampler = start(
        [KAFKA, "tool", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    output = process.stdout.read().decode()  # type: ignore[union-attr]
    return output, reap(process, sampler)


async def run_java(records: int) -> list[Run]:
    topic = "bench.java.perf"
    await kafka_io.create_topics(harness.BOOTSTRAP, [topic])
    out, rss = java_tool(
        "producer-perf-test",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        "200",
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={harness.BOOTSTRAP}",
        "acks=all",
        "enable.idempotence=true",
    )
    summary = re.findall(
        r"(\d+) records sent, ([\d.]+) records/sec .*?, ([\d.]+) ms 50th, [\d.]+ ms 95th, ([\d.]+) ms 99th",
        out,
    )[-1]
    runs = [
        Run(
            "kafka-java-producer-perf",
            int(summary[0]),
            float(summary[1]),
            float(summary[2]),
            float(summary[3]),
            rss,
        )
    ]
    out, rss = java_tool(
        "consumer-perf-test",
        "--bootstrap-server",
        harness.BOOTSTRAP,
        "--topic",
        topic,
        "--messages",
        str(records),
        "--group",
        "bench.java.consumer",
        "--timeout",
        "60000",
    )
    row = [line for line in out.splitlines() if re.match(r"^\d{4}-", line)][-1].split(", ")
    runs.append(Run("kafka-java-consumer-perf", int(row[4]), float(row[5]), None, None, rss))
    env = topic_env("kafka-java-txn-copier")
    await kafka_io.create_topics(harness.BOOTSTRAP, [env["BENCH_INPUT"]], log_append_time=True)
    await kafka_io.create_topics(harness.BOOTSTRAP, [env["BENCH_OUTPUT"]])
    await kafka_io.produce_orders(harness.BOOTSTRAP, env["BENCH_INPUT"], records, prefix="java")
    _, rss = java_tool(
        "transactional-message-copier",
        "--broker-list",
        harness.BOOTSTRAP,
        "--input-topic",
        env["BENCH_INPUT"],
        "--input-partition",
        "0",
        "--group-mode",
        "--output-topic",
        env["BENCH_OUTPUT"],
        "--consumer-group",
        env["BENCH_GROUP"],
        "--transactional-id",
        "bench-copier",
        "--transaction-size",
        "500",
        "--max-messages",
        str(records),
        "--use-group-metadata",
    )
    inputs = await kafka_io.timestamps(harness.BOOTSTRAP, env["BENCH_INPUT"])
    outputs = await kafka_io.timestamps(harness.BOOTSTRAP, env["BENCH_OUTPUT"])
    runs.append(from_timestamps("kafka-java-txn-copier", inputs, outputs, rss))
    for run in runs:
        print(f"{run.name}: {run.as_dict()}", flush=True)
    return runs


async def benchmark_cpu(records: int) -> list[Run]:
    runs = []
    by_name = {c.name: c for c in contenders()}
    for contender in by_name.values():
        runs.append(await run_contender(contender, min(records, SLOW_CAP) if contender.slow else records))
    alo = next(r for r in runs if r.name == "order-service-alo")
    rate = alo.throughput_rps / 2
    paced = max(100, min(records, int(rate * 20)))
    runs.append(
        await run_contender(
            by_name["order-service-alo"], paced, rate=rate, label="order-service-alo-half-load"
        )
    )
    runs.extend(await run_java(records))
    return runs


async def benchmark(
    records: int, *, only: str | None, io_names: tuple[str, ...]
) -> tuple[list[Run], IoInfo | None]:
    runs = await benchmark_cpu(records) if only != "io" else []
    if only == "cpu":
        return runs, None
    io_runs, io = await benchmark_io(records, io_names)
    return runs + io_runs, io


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--docs", action="store_true", help="also rewrite the tables and chart in docs/")
    parser.add_argument(
        "--bootstrap",
        help="comma-separated brokers of a running cluster to use; default: a fresh local broker",
    )
    parser.add_argument("--only", choices=("cpu", "io"), help="run one table: CPU-bound, or I/O-bound")
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
    if args.bootstrap:
        harness.BOOTSTRAP = args.bootstrap
    else:
        subprocess.run([KAFKA, "down"], check=True)
        subprocess.run([KAFKA, "up"], check=True, stdout=subprocess.DEVNULL)
    try:
        runs, io = asyncio.run(benchmark(args.records, only=args.only, io_names=args.contenders))
    finally:
        if not args.bootstrap:
            subprocess.run([KAFKA, "down"], check=False)
    write_results(runs, args.records, io=io, out_dir=args.out, docs=args.docs)


if __name__ == "__main__":
    main()
