"""`make bench`: each contender in turn, on its own copy of the input, against a fresh local broker."""

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench import kafka_io
from bench.measure import Run, from_timestamps
from bench.report import write_results

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
KAFKA = str(ROOT / "scripts" / "kafka")
BOOTSTRAP = "127.0.0.1:9092"
SLOW_CAP = 20_000  # per-message round-trip contenders: enough records for a steady rate


@dataclass
class Contender:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    slow: bool = False


def contenders() -> list[Contender]:
    python = [str(BIN / "python"), "-m"]
    service = {"ORDER_SERVICE_LOG_LEVEL": "WARNING", "ORDER_SERVICE_HTTP__HOST": "127.0.0.1"}
    return [
        Contender("seed-naive", [*python, "bench.contenders.seed_naive"], slow=True),
        Contender(
            "faststream-plain",
            [str(BIN / "faststream"), "run", "bench.contenders.faststream_plain:app"],
            slow=True,
        ),
        Contender("order-service-alo", [str(BIN / "faststream"), "run", "order_service.app:app"], service),
        Contender(
            "order-service-eos",
            [str(BIN / "faststream"), "run", "order_service.app:app"],
            {**service, "ORDER_SERVICE_DELIVERY__GUARANTEE": "exactly_once"},
        ),
        Contender("aiokafka-batch-copier", [*python, "bench.contenders.batch_copier"]),
    ]


def topic_env(name: str) -> dict[str, str]:
    return {
        "BENCH_BOOTSTRAP": BOOTSTRAP,
        "BENCH_INPUT": f"bench.{name}.in",
        "BENCH_OUTPUT": f"bench.{name}.out",
        "BENCH_GROUP": f"bench.{name}",
        "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ORDER_SERVICE_TOPICS__INPUT": f"bench.{name}.in",
        "ORDER_SERVICE_TOPICS__OUTPUT": f"bench.{name}.out",
        "ORDER_SERVICE_TOPICS__DEAD_LETTER": f"bench.{name}.dlq",
        "ORDER_SERVICE_CONSUMER__GROUP_ID": f"bench.{name}",
        "ORDER_SERVICE_HTTP__PORT": str(free_port()),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_ready(port: str, process: subprocess.Popen[bytes]) -> None:
    """Until the service has joined its group: records sent earlier would wait for the join."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2):
                return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError("the service did not become ready")


class PeakRss(threading.Thread):
    """Samples a process's VmHWM (peak resident set) until it exits.

    ru_maxrss from wait4 would do, but a child forked from this large orchestrator starts with
    the orchestrator's resident set counted in it; VmHWM is reset by exec.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb = pid, 0

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while True:
            try:
                match = re.search(r"VmHWM:\s+(\d+)", status.read_text())
            except OSError:
                return
            if match is None:  # a zombie: the process has exited
                return
            self.peak_kb = max(self.peak_kb, int(match.group(1)))
            time.sleep(0.1)


def start(command: list[str], **kwargs: object) -> tuple[subprocess.Popen[bytes], PeakRss]:
    process = subprocess.Popen(command, **kwargs)  # type: ignore[call-overload]
    sampler = PeakRss(process.pid)
    sampler.start()
    return process, sampler


def reap(process: subprocess.Popen[bytes], sampler: PeakRss) -> float:
    """Wait for the process; its peak RSS in MB."""
    process.wait()
    sampler.join()
    return sampler.peak_kb / 1024


async def run_contender(
    contender: Contender, records: int, *, rate: float | None = None, label: str = ""
) -> Run:
    name = label or contender.name
    env = topic_env(name)
    await kafka_io.create_topics(BOOTSTRAP, [env["BENCH_INPUT"]], log_append_time=True)
    await kafka_io.create_topics(BOOTSTRAP, [env["BENCH_OUTPUT"]])
    if rate is None:
        await kafka_io.produce_orders(BOOTSTRAP, env["BENCH_INPUT"], records, prefix=name)
    log = open(ROOT / "bench" / "results" / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    process, sampler = start(
        contender.command,
        env={**os.environ, **env, **contender.env},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        if rate is not None:
            await wait_ready(env["ORDER_SERVICE_HTTP__PORT"], process)
            await kafka_io.produce_orders(BOOTSTRAP, env["BENCH_INPUT"], records, prefix=name, rate=rate)
        deadline = time.monotonic() + 900
        while await kafka_io.committed_total(BOOTSTRAP, env["BENCH_INPUT"], env["BENCH_GROUP"]) < records:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} stopped or timed out; see bench/results/{name}.log")
            await asyncio.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        peak = reap(process, sampler)
        log.close()
    inputs = await kafka_io.timestamps(BOOTSTRAP, env["BENCH_INPUT"])
    outputs = await kafka_io.timestamps(BOOTSTRAP, env["BENCH_OUTPUT"])
    run = from_timestamps(name, inputs, outputs, peak)
    print(f"{name}: {run.as_dict()}", flush=True)
    return run


def java_tool(*args: str) -> tuple[str, float]:
    process, sampler = start(
        [KAFKA, "tool", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    output = process.stdout.read().decode()  # type: ignore[union-attr]
    return output, reap(process, sampler)


async def run_java(records: int) -> list[Run]:
    topic = "bench.java.perf"
    await kafka_io.create_topics(BOOTSTRAP, [topic])
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
        f"bootstrap.servers={BOOTSTRAP}",
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
        BOOTSTRAP,
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
    await kafka_io.create_topics(BOOTSTRAP, [env["BENCH_INPUT"]], log_append_time=True)
    await kafka_io.create_topics(BOOTSTRAP, [env["BENCH_OUTPUT"]])
    await kafka_io.produce_orders(BOOTSTRAP, env["BENCH_INPUT"], records, prefix="java")
    _, rss = java_tool(
        "transactional-message-copier",
        "--broker-list",
        BOOTSTRAP,
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
    inputs = await kafka_io.timestamps(BOOTSTRAP, env["BENCH_INPUT"])
    outputs = await kafka_io.timestamps(BOOTSTRAP, env["BENCH_OUTPUT"])
    runs.append(from_timestamps("kafka-java-txn-copier", inputs, outputs, rss))
    for run in runs:
        print(f"{run.name}: {run.as_dict()}", flush=True)
    return runs


async def benchmark(records: int) -> list[Run]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--docs", action="store_true", help="also rewrite the tables and chart in docs/")
    parser.add_argument(
        "--bootstrap",
        help="comma-separated brokers of a running cluster to use; default: a fresh local broker",
    )
    args = parser.parse_args()
    global BOOTSTRAP  # one cluster per run, read by every contender's environment
    if args.bootstrap:
        BOOTSTRAP = args.bootstrap
        runs = asyncio.run(benchmark(args.records))
    else:
        subprocess.run([KAFKA, "down"], check=True)
        subprocess.run([KAFKA, "up"], check=True, stdout=subprocess.DEVNULL)
        try:
            runs = asyncio.run(benchmark(args.records))
        finally:
            subprocess.run([KAFKA, "down"], check=False)
    write_results(runs, args.records, out_dir=args.out, docs=args.docs)


if __name__ == "__main__":
    main()
