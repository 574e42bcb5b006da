"""The CPU-bound table in docs/benchmarks.md: CPU per record, framework overhead, and the loops' rows."""

from bench.throughput.measure import PeerInfo, Run
from bench.throughput.report import cpu


def row(name: str, rps: float, cpu_us: float | None, rounds: list[float] | None = None) -> Run:
    return Run(name, 200_000, rps, 900.0, 1_200.0, 80.0, rounds=rounds, cpu_us_per_record=cpu_us)


RUNS = [
    row("order-service-alo", 30_000.0, 35.2),
    row("order-service-eos", 24_000.0, 41.0),
    row("confluent-loop-alo", 20_000.0, 30.0),
    row("confluent-loop-eos", 12_000.0, None),
    row("domain-work", 55_000.0, 18.0),
]


def test_each_row_shows_its_cpu_per_record_and_what_it_costs_beyond_the_domain_work() -> None:
    table = cpu.table(RUNS, None)

    assert "| CPU (µs/record) | framework overhead (µs/record) |" in table
    assert "| order-service-alo | 200,000 | 30,000 | 900 | 1,200 | 80.0 | 35.2 | 17.2 | 1.00 x |" in table
    assert "| confluent-loop-alo | 200,000 | 20,000 | 900 | 1,200 | 80.0 | 30.0 | 12.0 | 1.50 x |" in table


def test_the_loops_are_compared_with_order_service_in_their_own_guarantee() -> None:
    table = cpu.table(RUNS, None)

    # 24,000 / 12,000 in exactly-once; a run without CPU samples shows none, and no overhead.
    assert "| confluent-loop-eos | 200,000 | 12,000 | 900 | 1,200 | 80.0 | n/a | n/a | 2.00 x |" in table


def test_the_domain_work_row_is_no_contender_to_compare_or_chart() -> None:
    table = cpu.table(RUNS, None)

    assert "| domain-work | 200,000 | 55,000 | 900 | 1,200 | 80.0 | 18.0 | n/a | n/a | one run |" in table
    assert "domain work" in cpu.cpu_note(RUNS)
    # Results without CPU figures (from before they were measured) get no note.
    assert cpu.cpu_note([row("order-service-alo", 30_000.0, None)]) == ""


def test_without_the_domain_work_there_is_no_overhead() -> None:
    assert cpu.overhead(RUNS[0], None) is None
    assert cpu.overhead(RUNS[0], RUNS[-1]) == 35.2 - 18.0


def test_a_copier_does_no_order_work_so_it_has_no_overhead_beyond_it() -> None:
    copier = row("aiokafka-batch-copier", 45_000.0, 22.1)
    java = row("kafka-java-txn-copier", 10_000.0, 65.1)

    assert cpu.overhead(copier, RUNS[-1]) is None
    assert cpu.overhead(java, RUNS[-1]) is None
    assert "| aiokafka-batch-copier | 200,000 | 45,000 | 900 | 1,200 | 80.0 | 22.1 | n/a |" in cpu.table(
        [*RUNS, copier], None
    )


def test_a_loop_that_could_not_run_says_why_across_the_whole_row() -> None:
    peers = PeerInfo(versions={}, not_run={"confluent-loop-eos": "uv pip install failed"})

    line = cpu.table(RUNS[:1], peers).splitlines()[-1]

    assert line.startswith("| confluent-loop-eos | not run: uv pip install failed |")
    # As many cells as the header has.
    assert line.count("|") == cpu.table([], None).splitlines()[0].count("|")


def test_order_service_has_targets_against_the_frameworks_the_loops_and_in_cpu_per_record() -> None:
    runs = [
        row("order-service-alo", 30_000.0, 35.0, rounds=[30_000.0, 20_000.0, 36_000.0]),
        row("order-service-eos", 24_000.0, 24.0),
        row("order-service-alo-half-load", 15_000.0, 40.0),
        row("confluent-loop-alo", 20_000.0, 30.0, rounds=[20_000.0, 25_000.0, 20_000.0]),
        row("domain-work", 55_000.0, 12.0),
    ]

    targets = cpu.targets(runs, None)

    assert "order-service-alo ≥ 1 x quixstreams-alo" in targets
    # Per round 1.5, 0.8, 1.8: the median is met.
    loops = [line for line in targets.splitlines() if "x confluent-loop" in line]
    assert loops == [
        "| order-service-alo ≥ 1.2 x confluent-loop-alo | 1.50 x (median of 3: 0.80, 1.50, 1.80) — met |",
        "| order-service-eos ≥ 1.2 x confluent-loop-eos | confluent-loop-eos not run: not in these results |",
    ]
    assert "| domain-work: CPU ≤ 15 µs per record | 12.0 µs — met |" in targets
    assert "| order-service-alo: CPU ≤ 25 µs per record | 35.0 µs — not met |" in targets
    assert "| order-service-eos: CPU ≤ 25 µs per record | 24.0 µs — met |" in targets
    # The half-load row's p99 is 1,200 ms here.
    assert "| p99 at half load ≤ 20 ms (at-least-once) | 1200 ms (p50 900 ms) — not met |" in targets


def test_the_half_load_target_names_what_the_references_made_at_the_same_rate() -> None:
    def paced(name: str, p50: float, p99: float) -> Run:
        return Run(name, 290_000, 14_500.0, p50, p99, 80.0, cpu_us_per_record=40.0)

    runs = [
        *RUNS,
        paced("order-service-alo-half-load", 6.0, 40.0),
        paced("aiokafka-batch-copier-half-load-1", 14.0, 43.0),
        paced("aiokafka-batch-copier-half-load", 15.0, 203.0),
        paced("confluent-loop-alo-half-load", 91.0, 137.0),
    ]

    targets = cpu.targets(runs, None)
    table = cpu.table(runs, None)

    assert (
        "| p99 at half load ≤ 20 ms (at-least-once) | 40 ms (p50 6 ms) — not met; at the same rate: "
        "aiokafka-batch-copier 203 ms (p50 15), confluent-loop-alo 137 ms (p50 91) |"
    ) in targets
    # A paced row is no throughput contest: no ratio against the service.
    paced_loop = "| confluent-loop-alo-half-load | 290,000 | 14,500 | 91.0 | 137 | 80.0 | 40.0 | 22.0 | n/a |"
    assert paced_loop in table
