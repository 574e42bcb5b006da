"""The scale-out curve: 1, 2 and 4 order-service processes in one group over 12 partitions.

The input is written in one transaction, left open until every instance is ready: the service
reads `read_committed`, so the whole group starts on the whole input at once, and the run is
measured from that commit until the group has committed the whole input.
"""

import time

from bench.throughput import kafka_io
from bench.throughput.harness import (
    SERVICE,
    SERVICE_ENV,
    free_port,
    launch,
    topic_env,
    wait_committed,
    wait_ready,
)
from bench.throughput.measure import Run, ScaleRun, from_timestamps
from bench.throughput.proc import busy_seconds, cpu_seconds

PARTITIONS = 12
INSTANCES = (1, 2, 4)
CLUSTER_INSTANCES = (1, 2)
# A smaller request than this is the CI smoke run (make bench-smoke): 1 and 2 instances, no cluster.
SMOKE_BELOW = 10_000
SMOKE_INSTANCES = (1, 2)
RECORDS_CAP = 100_000  # 10 s and more per run on the 2-core bench machine: a steady rate
MIN_WINDOW_S = 1.0  # in a shorter run CPU per wall-clock second is noise: the table shows none


class Instances:
    """`count` order-service processes of run `name` in its group, each with its own HTTP port and log."""

    def __init__(self, name: str, env: dict[str, str], count: int) -> None:
        self.ports = [str(free_port()) for _ in range(count)]
        self.launched = [
            launch(SERVICE, {**env, **SERVICE_ENV, "ORDER_SERVICE_HTTP__PORT": port}, log_name=f"{name}-{i}")
            for i, port in enumerate(self.ports, start=1)
        ]
        self.processes = [launched.process for launched in self.launched]

    async def wait_ready(self) -> None:
        for port, process in zip(self.ports, self.processes, strict=True):
            await wait_ready(port, process)

    def cpu(self) -> list[float]:
        return [cpu_seconds(process.pid) for process in self.processes]

    def stop(self) -> float:
        """SIGTERM to all, then wait for each; the largest peak RSS among them, in MB."""
        for launched in self.launched:
            launched.terminate()
        return max(launched.reap() for launched in self.launched)


def usage(instances: Instances) -> list[float]:
    """CPU seconds so far: each instance's, then the whole machine's."""
    return [*instances.cpu(), busy_seconds()]


async def scale_run(
    name: str, count: int, records: int, *, bootstrap: str, brokers: int
) -> tuple[Run, ScaleRun]:
    """`records` orders through `count` order-service processes (at-least-once) in one group."""
    env = topic_env(name, bootstrap)
    for topic, stamped in ((env["BENCH_INPUT"], True), (env["BENCH_OUTPUT"], False)):
        await kafka_io.create_topics(
            bootstrap, [topic], log_append_time=stamped, partitions=PARTITIONS, replicas=min(brokers, 3)
        )
    async with kafka_io.held_orders(bootstrap, env["BENCH_INPUT"], records, prefix=name) as release:
        instances = Instances(name, env, count)
        try:
            await instances.wait_ready()
            await release()
            since, before = time.time(), usage(instances)
            await wait_committed(env, records, instances.processes, name=name)
            used = [after - at_start for after, at_start in zip(usage(instances), before, strict=True)]
        finally:
            peak = instances.stop()
    inputs = await kafka_io.timestamps(bootstrap, env["BENCH_INPUT"])
    outputs = await kafka_io.timestamps(bootstrap, env["BENCH_OUTPUT"])
    run = from_timestamps(name, inputs, outputs, peak)
    # Per second until the last output: once idle, the instances use next to no CPU.
    window = max(outputs.values()) / 1000 - since
    cores = [u / window for u in used] if window >= MIN_WINDOW_S else []
    scale = ScaleRun(
        instances=count,
        brokers=brokers,
        window_s=round(window, 1),
        cpu_per_instance=[round(c, 2) for c in cores[:-1]],
        machine_busy_cores=round(cores[-1], 2) if cores else None,
    )
    print(f"{name}: {run.as_dict()} {scale}", flush=True)
    return run, scale


async def benchmark_scale(
    records: int, *, bootstrap: str, brokers: int, instances: tuple[int, ...], prefix: str
) -> tuple[list[Run], dict[str, ScaleRun]]:
    """One run per number of instances, named <prefix>-<instances>."""
    runs, scale = [], {}
    records = min(records, RECORDS_CAP)
    for n in instances:
        run, scale[f"{prefix}-{n}"] = await scale_run(
            f"{prefix}-{n}", n, records, bootstrap=bootstrap, brokers=brokers
        )
        runs.append(run)
    return runs, scale
