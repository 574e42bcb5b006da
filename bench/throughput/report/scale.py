"""The scale-out table and its chart in docs/benchmarks.md."""

from pathlib import Path

import matplotlib.pyplot as plt

from bench.throughput.measure import Run, ScaleInfo, ScaleRun, shown


def rows(runs: list[Run], scale: ScaleInfo) -> list[tuple[Run, ScaleRun]]:
    return [(run, scale["runs"][run.name]) for run in runs if run.name in scale["runs"]]


def speed_up(run: Run, info: ScaleRun, measured: list[tuple[Run, ScaleRun]]) -> str:
    """Throughput over that of one instance on the same brokers."""
    one = [r for r, i in measured if i["brokers"] == info["brokers"] and i["instances"] == 1]
    return f"{run.throughput_rps / one[0].throughput_rps:.2f} x" if one else "n/a"


def table(runs: list[Run], scale: ScaleInfo, cores: object) -> str:
    measured = rows(runs, scale)
    lines = [
        "| run | brokers | instances | records/s | speed-up | CPU per instance (cores) "
        f"| machine busy (of {cores} cores) | latency p99 (ms) | peak RSS per instance (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run, info in measured:
        d = run.as_dict()
        cpu = " / ".join(f"{c:.2f}" for c in info["cpu_per_instance"]) or f"n/a: window {info['window_s']} s"
        lines.append(
            f"| {run.name} | {info['brokers']} | {info['instances']} | {shown(d['throughput_rps'])} "
            f"| {speed_up(run, info, measured)} | {cpu} | {shown(info['machine_busy_cores'])} "
            f"| {shown(d['latency_p99_ms'])} | {shown(d['peak_rss_mb'])} |"
        )
    for name, why in scale["not_run"].items():
        lines.append(f"| {name} | not run: {why} |" + " |" * 7)
    return "\n".join(lines)


def busiest(runs: list[Run], scale: ScaleInfo, cores: object) -> str:
    measured = [(r, i) for r, i in rows(runs, scale) if i["brokers"] == 1] or rows(runs, scale)
    if not measured:
        return ""
    run, info = max(measured, key=lambda pair: pair[1]["instances"])
    if info["machine_busy_cores"] is None:
        return ""
    return (
        f"With {info['instances']} instances ({run.name}) the instances used "
        f"{sum(info['cpu_per_instance']):.2f} cores together, and the whole machine "
        f"{info['machine_busy_cores']:.2f} of its {cores}."
    )


def section(runs: list[Run], scale: ScaleInfo, cores: object, chart_name: str) -> str:
    return (
        f"### Scale-out\n\norder-service processes (at-least-once, the default CPU-bound processor) in "
        f"one consumer group over an input topic of {scale['partitions']} partitions. The input is "
        "written in one transaction, committed once every instance is ready (the service reads "
        "`read_committed`): the whole group starts on the whole input at once, and the latencies "
        "include that wait. CPU per instance: user + system seconds of its process "
        "(`/proc/<pid>/stat`) per wall-clock second from that commit to the last output; machine "
        "busy: every CPU outside idle and iowait (`/proc/stat`), brokers and tools included. "
        "The cluster runs: 3 KRaft brokers on the same machine, topics with 3 replicas, min ISR 2.\n\n"
        f"{table(runs, scale, cores)}\n\n{busiest(runs, scale, cores)}\n\n"
        f"![scale-out throughput]({chart_name})"
    )


def chart(runs: list[Run], scale: ScaleInfo, path: Path) -> None:
    measured = rows(runs, scale)
    labels = [f"{i['brokers']} broker(s), {i['instances']} instance(s)" for _, i in measured]
    fig, ax = plt.subplots(figsize=(9, 3.5))
    bars = ax.barh(labels, [r.throughput_rps for r, _ in measured], color="#55a868")
    ax.bar_label(bars, labels=[f"{r.throughput_rps:,.0f}" for r, _ in measured], padding=3, fontsize=8)
    ax.set_xlabel("records per second (higher is better)")
    ax.set_title(
        f"Scale-out: order-service instances in one group, {scale['partitions']} partitions, same machine"
    )
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
