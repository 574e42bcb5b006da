"""Running one contender: its own topics and input, the process with its peak RSS, its numbers."""

import asyncio
import functools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench import ports
from bench.throughput import kafka_io, proc
from bench.throughput.measure import Run, from_timestamps, p99_by_second

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
KAFKA = str(ROOT / "scripts" / "kafka")
# One cluster per run, read by every contender's environment; bench.throughput sets it from --bootstrap.
BOOTSTRAP = "127.0.0.1:9092"
SERVICE = [str(BIN / "faststream"), "run", "order_service.app:app"]
STOP_TIMEOUT_S = 60  # after SIGTERM: a contender stuck in its shutdown must not hang the bench
SERVICE_ENV = {"ORDER_SERVICE_LOG_LEVEL": "WARNING", "ORDER_SERVICE_HTTP__HOST": "127.0.0.1"}
SAMPLE_S = 0.1  # how often a contender's peak RSS and CPU are read
READY_TIMEOUT_S = 60  # from launch until a paced run's contender has joined its group


@dataclass
class Contender:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    slow: bool = False
    # The broker stamps its outputs on arrival (LogAppendTime): for a contender that gives each output
    # its input's timestamp, as Quix Streams does.
    stamped_outputs: bool = False
    # The bench makes its dead-letter topic: the framework does not create the topics it writes to.
    dead_letter: bool = False
    # order-service: ready once /health/ready answers. Others are ready once their group has joined.
    serves_health: bool = False


def topic_env(name: str, bootstrap: str | None = None) -> dict[str, str]:
    """The topics, group and HTTP port of run `name`, on `bootstrap` or the run's cluster."""
    bootstrap = bootstrap or BOOTSTRAP
    return {
        "BENCH_BOOTSTRAP": bootstrap,
        "BENCH_INPUT": f"bench.{name}.in",
        "BENCH_OUTPUT": f"bench.{name}.out",
        "BENCH_DEAD_LETTER": f"bench.{name}.dlq",
        "BENCH_GROUP": f"bench.{name}",
        "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ORDER_SERVICE_TOPICS__INPUT": f"bench.{name}.in",
        "ORDER_SERVICE_TOPICS__OUTPUT": f"bench.{name}.out",
        "ORDER_SERVICE_TOPICS__DEAD_LETTER": f"bench.{name}.dlq",
        "ORDER_SERVICE_CONSUMER__GROUP_ID": f"bench.{name}",
        "ORDER_SERVICE_HTTP__PORT": str(free_port()),
    }


# The contenders' HTTP ports: below the ephemeral range, apart from the tests' and the chaos run's.
HTTP_PORTS = range(28100, 29000)  # 28081-28083: the compose stack's


def free_port() -> int:
    return ports.free_port(HTTP_PORTS, "a bench contender's HTTP server")


async def wait_ready(port: str, process: subprocess.Popen[bytes]) -> None:
    """Until the service has joined its group: records sent earlier would wait for the join."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2):
                return True
        except OSError:
            return False

    async def answers() -> bool:
        # In a thread: a request that waits its 2 s would otherwise hold the bench's event loop.
        return await asyncio.to_thread(ready)

    await _until(answers, process, "the service did not become ready")


async def wait_joined(env: dict[str, str], process: subprocess.Popen[bytes]) -> None:
    """Until a contender without a health endpoint has joined its group (see wait_ready)."""
    group = env["BENCH_GROUP"]
    async with kafka_io.admin_client(env["BENCH_BOOTSTRAP"]) as admin:
        joined = functools.partial(kafka_io.group_joined, admin, group)
        await _until(joined, process, f"the contender's group {group} did not join")


async def _until(
    ready: Callable[[], Awaitable[bool]], process: subprocess.Popen[bytes], failure: str
) -> None:
    """Poll `ready` while `process` runs, for up to READY_TIMEOUT_S; RuntimeError(`failure`) if not."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        if await ready():
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(failure)


class ProcessSampler(threading.Thread):
    """Samples a process's VmHWM (peak resident set) and the CPU of it and its descendants every
    SAMPLE_S until it exits.

    ru_maxrss from wait4 would do for the peak, but a child forked from this large orchestrator starts
    with the orchestrator's resident set counted in it; VmHWM is reset by exec. The CPU samples are
    (wall-clock time, CPU seconds), for the CPU per record over the throughput's window
    (measure.cpu_per_record); a sample costs this process about 1 ms (proc.tree_cpu_seconds).
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb = pid, 0
        self.cpu: list[tuple[float, float]] = []

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while True:
            try:
                match = re.search(r"VmHWM:\s+(\d+)", status.read_text())
                if match is None:  # a zombie: the process has exited
                    return
                self.cpu.append((time.time(), proc.tree_cpu_seconds(self.pid)))
            except OSError:  # ProcessLookupError included: it has exited
                return
            self.peak_kb = max(self.peak_kb, int(match.group(1)))
            time.sleep(SAMPLE_S)


def start(command: list[str], **kwargs: object) -> tuple[subprocess.Popen[bytes], ProcessSampler]:
    process = subprocess.Popen(command, **kwargs)  # type: ignore[call-overload]
    sampler = ProcessSampler(process.pid)
    sampler.start()
    return process, sampler


def reap(process: subprocess.Popen[bytes], sampler: ProcessSampler) -> float:
    """Wait for the process, killing it after STOP_TIMEOUT_S; its peak RSS in MB."""
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"{process.args!r} did not stop within {STOP_TIMEOUT_S} s: killed", flush=True)
        process.kill()
        process.wait()
    sampler.join()
    return sampler.peak_kb / 1024


@dataclass
class Launched:
    """A contender's process, the sampler of its peak RSS and CPU, and its log in bench/results."""

    process: subprocess.Popen[bytes]
    sampler: ProcessSampler
    log: IO[bytes]

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def reap(self) -> float:
        """Wait until it has stopped; its peak RSS in MB."""
        try:
            return reap(self.process, self.sampler)
        finally:
            self.log.close()


def launch(command: list[str], env: dict[str, str], *, log_name: str) -> Launched:
    """`command` in the repository with `env` added, its output to bench/results/<log_name>.log."""
    log = open(ROOT / "bench" / "results" / f"{log_name}.log", "wb")  # noqa: SIM115 - closed by reap
    process, sampler = start(
        command, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    return Launched(process, sampler, log)


async def wait_committed(
    env: dict[str, str], records: int, processes: list[subprocess.Popen[bytes]], *, name: str
) -> None:
    """Until the group of run `name` has committed `records` input records; fails if a process stops."""
    deadline = time.monotonic() + 900
    while (
        await kafka_io.committed_total(env["BENCH_BOOTSTRAP"], env["BENCH_INPUT"], env["BENCH_GROUP"])
        < records
    ):
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            raise RuntimeError(f"{name} stopped or timed out; see bench/results/{name}*.log")
        await asyncio.sleep(0.5)


async def run_contender(
    contender: Contender,
    records: int,
    *,
    rate: float | None = None,
    label: str = "",
    keys: int | None = None,
) -> Run:
    """`records` orders through the contender; `keys` distinct keys when given, else keyed by order id."""
    name = label or contender.name
    env = topic_env(name)
    await kafka_io.create_topics(BOOTSTRAP, [env["BENCH_INPUT"]], log_append_time=True)
    await kafka_io.create_topics(BOOTSTRAP, [env["BENCH_OUTPUT"]], log_append_time=contender.stamped_outputs)
    if contender.dead_letter:
        await kafka_io.create_topics(BOOTSTRAP, [env["BENCH_DEAD_LETTER"]])
    if rate is None:
        await kafka_io.produce_orders(BOOTSTRAP, env["BENCH_INPUT"], records, prefix=name, keys=keys)
    launched = launch(contender.command, {**env, **contender.env}, log_name=name)
    try:
        if rate is not None:
            if contender.serves_health:
                await wait_ready(env["ORDER_SERVICE_HTTP__PORT"], launched.process)
            else:
                await wait_joined(env, launched.process)
            await kafka_io.produce_orders(
                BOOTSTRAP, env["BENCH_INPUT"], records, prefix=name, keys=keys, rate=rate
            )
        await wait_committed(env, records, [launched.process], name=name)
    finally:
        launched.terminate()
        peak = launched.reap()
    inputs = await kafka_io.timestamps(BOOTSTRAP, env["BENCH_INPUT"])
    outputs = await kafka_io.timestamps(BOOTSTRAP, env["BENCH_OUTPUT"])
    run = from_timestamps(name, inputs, outputs, peak, launched.sampler.cpu)
    print(f"{name}: {run.as_dict()}", flush=True)
    if rate is not None:
        by_second = ", ".join(f"{p99:.0f}" for p99 in p99_by_second(inputs, outputs))
        print(f"{name}: p99 (ms) of each second's arrivals: {by_second}", flush=True)
    return run
