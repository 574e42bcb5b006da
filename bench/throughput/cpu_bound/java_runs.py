"""The Java rows of the CPU-bound table: Kafka's own perf tools and transactional copier, same jars."""

import re
import subprocess

from bench.throughput import harness, kafka_io
from bench.throughput.harness import KAFKA, ROOT, reap, start, topic_env
from bench.throughput.measure import Run, from_timestamps


def java_tool(*args: str) -> tuple[str, float, list[tuple[float, float]]]:
    """The tool's output, its peak RSS in MB, and its CPU samples (harness.ProcessSampler)."""
    process, sampler = start(
        [KAFKA, "tool", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    output = process.stdout.read().decode()  # type: ignore[union-attr]
    return output, reap(process, sampler), sampler.cpu


async def run_java(records: int) -> list[Run]:
    topic = "bench.java.perf"
    await kafka_io.create_topics(harness.BOOTSTRAP, [topic])
    out, rss, _ = java_tool(
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
    out, rss, _ = java_tool(
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
    _, rss, cpu = java_tool(
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
    runs.append(from_timestamps("kafka-java-txn-copier", inputs, outputs, rss, cpu))
    for run in runs:
        print(f"{run.name}: {run.as_dict()}", flush=True)
    return runs
