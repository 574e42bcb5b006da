"""The CPU-bound table: order-service and the seed's contenders, the peer frameworks and the
hand-written confluent-kafka loops, Kafka's Java tools, each once per round; the domain work
alone; then order-service at half its measured rate, three times."""

from dataclasses import replace

from bench.throughput.cpu_bound.domain_work import domain_work
from bench.throughput.cpu_bound.java_runs import run_java
from bench.throughput.cpu_bound.peers import peer_contenders
from bench.throughput.harness import BIN, SERVICE, SERVICE_ENV, Contender, run_contender
from bench.throughput.measure import Results
from bench.throughput.rounds import ROUNDS, Planned, in_rounds
from bench.throughput.scale_out import SMOKE_BELOW

SLOW_CAP = 20_000  # per-message round-trip contenders: enough records for a steady rate
# The half-load latency sets a target: its runs are repeated, and the median run's figures are the
# row order-service-alo-half-load (each run also appears as order-service-alo-half-load-<n>).
HALF_LOAD_RUNS = 3
HALF_LOADED = "-half-load"  # ends every paced row's name: order-service's and its references'
# Fed at the same rate, in the same way: what the machine's tail is without order-service. The copier
# does no order work; the hand-written loop does it, in 2,000-record batches (its p50 is its batching).
HALF_LOAD_REFERENCES = ("aiokafka-batch-copier", "confluent-loop-alo")


def contenders() -> list[Contender]:
    python = [str(BIN / "python"), "-m"]
    return [
        Contender("seed-naive", [*python, "bench.throughput.contenders.seed_naive"], slow=True),
        Contender(
            "faststream-plain",
            [str(BIN / "faststream"), "run", "bench.throughput.contenders.faststream_plain:app"],
            slow=True,
        ),
        Contender("order-service-alo", SERVICE, SERVICE_ENV, serves_health=True),
        Contender(
            "order-service-eos",
            SERVICE,
            {**SERVICE_ENV, "ORDER_SERVICE_DELIVERY__GUARANTEE": "exactly_once"},
            serves_health=True,
        ),
        Contender("aiokafka-batch-copier", [*python, "bench.throughput.contenders.batch_copier"]),
    ]


async def benchmark_cpu(records: int, results: Results, *, peers_only: bool) -> None:
    """Every contender once per round (one round in the smoke run); the rows are the medians."""
    by_name = {c.name: c for c in contenders()}
    names = ("order-service-alo", "order-service-eos") if peers_only else tuple(by_name)
    rounds = 1 if records < SMOKE_BELOW else ROUNDS
    planned = [
        Planned(c, min(records, SLOW_CAP) if c.slow else records, rounds)
        for c in (by_name[name] for name in names)
    ]
    peers, results.peers = peer_contenders(records)
    planned += [replace(p, rounds=rounds) for p in peers]
    results.runs.extend(await in_rounds(planned, results.peers["not_run"]))
    results.runs.append(domain_work(records, rounds))
    if peers_only:
        return
    await benchmark_half_load(records, results)
    results.runs.extend(await run_java(records))


async def benchmark_half_load(records: int, results: Results) -> None:
    """At half the measured at-least-once rate, HALF_LOAD_RUNS times; the median p99 run counts.
    Then the references at the same rate, as many times: rows `<name>-half-load`."""
    by_name = {c.name: c for c in contenders()}
    service = by_name["order-service-alo"]
    alo = next((r for r in results.runs if r.name == service.name), None)
    if alo is None:
        alo = await run_contender(service, records)
        results.runs.append(alo)
    rate = alo.throughput_rps / 2
    paced = max(100, min(records, int(rate * 20)))
    peers = {p.contender.name: p.contender for p in peer_contenders(records)[0]}
    for contender in [service, *(by_name.get(n) or peers.get(n) for n in HALF_LOAD_REFERENCES)]:
        if contender is None:
            continue  # a peer that cannot run here: listed as not run in the CPU-bound table
        name = contender.name + HALF_LOADED
        runs = [
            await run_contender(contender, paced, rate=rate, label=f"{name}-{n}")
            for n in range(1, HALF_LOAD_RUNS + 1)
        ]
        median = sorted(runs, key=lambda r: r.latency_p99_ms or 0.0)[len(runs) // 2]
        results.runs.extend([*runs, replace(median, name=name)])
