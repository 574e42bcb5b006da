"""The effects table in docs/benchmarks.md: its rows from the median runs, and issue 25's targets."""

from bench.throughput.measure import EffectsInfo, Run
from bench.throughput.report import effects


def row(name: str, rounds: list[float], p99: float = 900.0, rss: float = 80.0) -> Run:
    median = sorted(rounds)[len(rounds) // 2]
    return Run(name, 100_000, median, None, p99, rss, rounds=rounds if len(rounds) > 1 else None)


def info(failed: dict[str, str] | None = None) -> EffectsInfo:
    ledger = {"accepted": 91_234}
    return EffectsInfo(
        skus=2_738,
        stock_share=0.9,
        records={"effects-inbox": 100_000, "effects-no-inbox": 100_000, "effects-naive": 20_000},
        runs={
            "effects-inbox-2": {"contender_us": 120.4, "postgres_us": 210.0, "ledger": ledger},
            "effects-no-inbox-1": {"contender_us": 110.0, "postgres_us": 150.5, "ledger": ledger},
        },
        rows={"effects-inbox": "effects-inbox-2", "effects-no-inbox": "effects-no-inbox-1"},
        failed=failed or {},
    )


def test_a_row_shows_its_median_run_with_the_cpu_and_ledger_of_that_run() -> None:
    runs = [row("effects-inbox", [5_200.0, 6_100.0, 5_900.0], p99=12_345.0, rss=81.5)]

    table = effects.table(runs, info())

    assert (
        "| effects-inbox | 100,000 | 5,900 | 12,345 | 81.5 | 120 | 210 | 91,234 | 5,200, 6,100, 5,900 |"
        in table
    )
    # No run, no failure: no row.
    assert "effects-naive" not in table


def test_a_failed_contender_shows_why_instead_of_figures() -> None:
    failed = {"effects-naive": "effects-naive-1: 19,999 inputs and 19,999 orders in the ledger, not 20,000"}

    table = effects.table([row("effects-inbox", [6_000.0])], info(failed))

    assert "| effects-naive | effects-naive-1: 19,999 inputs" in table
    assert "| effects-inbox | 100,000 | 6,000 |" in table


def test_a_rate_target_is_met_on_the_median_of_the_rounds() -> None:
    met = [row("effects-inbox", [4_800.0, 5_100.0, 5_300.0])]
    missed = [row("effects-inbox", [4_800.0, 4_900.0, 5_300.0])]

    assert effects.target(met, "effects-inbox", None, 5_000.0).endswith("— met")
    assert effects.target(missed, "effects-inbox", None, 5_000.0) == (
        "4,900 records/s (median of 3: 4,800, 4,900, 5,300) — not met"
    )


def test_a_ratio_target_is_the_median_of_the_ratios_within_each_round() -> None:
    inbox = row("effects-inbox", [5_000.0, 7_000.0, 6_000.0])
    # Per round 0.5, 1.0, 0.6: the median 0.6 misses 0.7, although the rows' medians give 1.0.
    no_inbox = row("effects-no-inbox", [10_000.0, 7_000.0, 10_000.0])

    assert effects.target([inbox, no_inbox], "effects-inbox", "effects-no-inbox", 0.7) == (
        "0.60 x (median of 3: 0.50, 0.60, 1.00) — not met"
    )


def test_a_target_whose_contenders_did_not_both_run_says_so() -> None:
    runs = [row("effects-inbox", [6_000.0])]

    targets = effects.targets(runs)

    assert "| effects-inbox ≥ 5 x effects-naive | not in these results |" in targets
    assert "| effects-inbox ≥ 5,000 orders/s | 6,000 records/s — met |" in targets


def test_the_section_names_the_set_up_and_every_target() -> None:
    runs = [
        row("effects-inbox", [6_000.0, 6_500.0, 7_000.0]),
        row("effects-no-inbox", [7_000.0, 8_000.0, 9_000.0]),
        row("effects-naive", [1_000.0, 1_100.0, 1_200.0]),
    ]

    section = effects.section(runs, info())

    assert section.startswith("### Effects\n")
    assert "127.0.0.1:20532" in section
    assert "2,738 SKUs, each stocked with 90%" in section
    assert "effects-naive 20,000" in section
    assert (
        "| effects-inbox ≥ 0.7 x effects-no-inbox | 0.81 x (median of 3: 0.78, 0.81, 0.86) — met |" in section
    )
    assert "| effects-inbox ≥ 5 x effects-naive | 5.91 x (median of 3: 5.83, 5.91, 6.00) — met |" in section
