"""Turning what a contender wrote into throughput and latency numbers, and its CPU into CPU per record."""

import bisect
from dataclasses import asdict, dataclass, field
from typing import TypedDict


@dataclass
class Run:
    name: str
    records: int
    throughput_rps: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    peak_rss_mb: float | None
    # A row made of several runs (bench/throughput/rounds.py): each run's throughput, in round order.
    rounds: list[float] | None = None
    # User + system CPU of the contender (process and descendants) per output record, over the same
    # window as the throughput: from the first output to the last (cpu_per_record).
    cpu_us_per_record: float | None = None

    def as_dict(self) -> dict[str, object]:
        def rounded(v: object) -> object:
            return (
                round(v, 1) if isinstance(v, float) else [rounded(x) for x in v] if isinstance(v, list) else v
            )

        return {k: rounded(v) for k, v in asdict(self).items()}


class IoInfo(TypedDict):
    """How the I/O-bound runs were made, and the contenders that could not run here, with the reason."""

    latencies_ms: list[int]
    keys: int
    partitions: int
    key_max_in_flight_100ms: int
    contenders: list[str]
    not_run: dict[str, str]


class PeerInfo(TypedDict):
    """The packages' versions in each peer's venv, and the peer runs that could not run here, and why."""

    versions: dict[str, dict[str, str]]
    not_run: dict[str, str]


class ScaleRun(TypedDict):
    """One scale-out run: its instances, brokers, and CPU over its measured window."""

    instances: int
    brokers: int
    window_s: float
    # Per wall-clock second from the release of the input to the last output, user+sys seconds of
    # each instance and of the whole machine (/proc/stat); none for a window under a second.
    cpu_per_instance: list[float]
    machine_busy_cores: float | None


class ScaleInfo(TypedDict):
    partitions: int
    runs: dict[str, ScaleRun]
    not_run: dict[str, str]


class EffectsInfo(TypedDict):
    """How the effects table's runs were made: the orders' SKUs, the stock's share of their demand,
    the records per contender; per run its CPU and ledger check, per row the run it shows; and the
    contenders that failed a run or a check, or could not run here, with the reason."""

    skus: int
    stock_share: float
    records: dict[str, int]
    runs: dict[str, dict[str, object]]
    rows: dict[str, str]
    failed: dict[str, str]


@dataclass
class Results:
    """What one `bench.throughput` run measured: every run, and how each table's runs were made."""

    runs: list[Run] = field(default_factory=list)
    io: IoInfo | None = None
    peers: PeerInfo | None = None
    scale: ScaleInfo | None = None
    effects: EffectsInfo | None = None


def shown(value: object) -> str:
    """A number as the tables show it: no decimals from 100 up."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if isinstance(value, float) and value >= 100 else f"{value}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def p99_by_second(inputs: dict[bytes, int], outputs: dict[bytes, int]) -> list[float]:
    """The p99 latency (ms) of the orders that reached the broker in each second of a paced run,
    counted from the first input's arrival: where a run's tail comes from, a hiccup at the start or
    spikes all along (the half-load runs print it)."""
    seconds: dict[int, list[float]] = {}
    first = min(inputs.values(), default=0)
    for key, out in outputs.items():
        if key in inputs:
            seconds.setdefault((inputs[key] - first) // 1000, []).append(float(out - inputs[key]))
    if not seconds:
        return []
    return [percentile(seconds[s], 0.99) if s in seconds else float("nan") for s in range(max(seconds) + 1)]


# CPU is sampled every 0.1 s (harness.ProcessSampler): over a shorter window CPU per record is noise.
MIN_CPU_WINDOW_S = 0.5


def cpu_at(samples: list[tuple[float, float]], when: float) -> float | None:
    """CPU seconds at wall-clock time `when`, linear between the (time, CPU seconds) samples around
    it; None outside them."""
    times = [t for t, _ in samples]
    after = bisect.bisect_left(times, when)
    if after == len(samples) or (after == 0 and times[0] != when):
        return None
    if times[after] == when:
        return samples[after][1]
    (t0, c0), (t1, c1) = samples[after - 1], samples[after]
    return c0 + (c1 - c0) * (when - t0) / (t1 - t0)


def cpu_per_record(
    samples: list[tuple[float, float]], *, first_s: float, last_s: float, records: int
) -> float | None:
    """CPU µs per record between wall-clock times `first_s` and `last_s`, `records` of them; None for a
    window shorter than MIN_CPU_WINDOW_S or not inside the samples.

    Startup (imports, joining the group) and the idle time until the bench stops the contender fall
    outside: what remains is the steady cost of a record, the window its throughput is measured on.
    """
    if last_s - first_s < MIN_CPU_WINDOW_S or records <= 0:
        return None
    first, last = cpu_at(samples, first_s), cpu_at(samples, last_s)
    if first is None or last is None:
        return None
    return (last - first) / records * 1e6


def from_timestamps(
    name: str,
    inputs: dict[bytes, int],
    outputs: dict[bytes, int],
    peak_rss_mb: float | None,
    cpu_samples: list[tuple[float, float]] | None = None,
) -> Run:
    """Throughput from the first output to the last; latency from input to output timestamp, per key;
    CPU per record over the same window when the contender's CPU was sampled."""
    matched = [float(outputs[key] - inputs[key]) for key in outputs if key in inputs]
    first_ms, last_ms = min(outputs.values()), max(outputs.values())
    span_s = max(1e-3, (last_ms - first_ms) / 1000)
    cpu = (
        cpu_per_record(cpu_samples, first_s=first_ms / 1000, last_s=last_ms / 1000, records=len(outputs))
        if cpu_samples
        else None
    )
    return Run(
        name=name,
        records=len(outputs),
        throughput_rps=len(outputs) / span_s,
        latency_p50_ms=float(percentile(matched, 0.50)) if matched else None,
        latency_p99_ms=float(percentile(matched, 0.99)) if matched else None,
        peak_rss_mb=peak_rss_mb,
        cpu_us_per_record=cpu,
    )
