"""The benchmark's rounds: which runs are made, in what order, and how a target's median is taken."""

import pytest
from bench.throughput import rounds
from bench.throughput.harness import Contender
from bench.throughput.measure import Run
from bench.throughput.rounds import Planned, in_rounds, median_run, per_round, verdict


def run(name: str, rps: float, p99: float = 0.0) -> Run:
    return Run(name, 1000, rps, None, p99, None)


def test_the_median_run_is_the_middle_by_throughput_and_keeps_every_round_in_order() -> None:
    row = median_run("alo", [run("alo-1", 700, p99=1), run("alo-2", 500, p99=2), run("alo-3", 900, p99=3)])

    assert (row.name, row.throughput_rps, row.latency_p99_ms) == ("alo", 700, 1)
    assert row.rounds == [700, 500, 900]


def test_a_single_run_is_its_own_row_without_rounds() -> None:
    row = median_run("alo", [run("alo", 700)])

    assert (row.name, row.throughput_rps, row.rounds) == ("alo", 700, None)


def test_ratios_are_taken_within_each_round() -> None:
    a = Run("a", 1, 10.0, None, None, None, rounds=[10.0, 30.0, 20.0])
    b = Run("b", 1, 5.0, None, None, None, rounds=[5.0, 10.0, 20.0])

    assert per_round(a, b) == [2.0, 3.0, 1.0]
    # Without rounds on both sides, the rows' own ratio.
    assert per_round(a, run("c", 4.0)) == [2.5]


def test_a_verdict_is_on_the_median_and_names_every_round() -> None:
    assert verdict([0.55, 0.7, 0.61], 0.6) == "0.61 x (median of 3: 0.55, 0.61, 0.70) — met"
    assert verdict([0.55], 0.6) == "0.55 x — not met"
    assert verdict([4148.0, 4950.0, 4535.0], 5000.0, " records/s") == (
        "4,535 records/s (median of 3: 4,148, 4,535, 4,950) — not met"
    )


async def test_rounds_interleave_contenders_and_a_failed_optional_one_is_listed_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    rates = {"svc-1": 5.0, "svc-2": 7.0, "svc-3": 6.0, "peer-1": 9.0, "once": 1.0}

    async def fake_run(contender: Contender, records: int, *, keys: int | None, label: str) -> Run:
        made.append(label)
        if label == "peer-2":
            raise RuntimeError("peer-2 stopped")
        return run(label, rates[label])

    monkeypatch.setattr(rounds, "run_contender", fake_run)
    monkeypatch.setattr(rounds, "last_log_line", lambda name: f"last line of {name}")
    not_run: dict[str, str] = {}

    rows = await in_rounds(
        [
            Planned(Contender("svc", []), 10),
            Planned(Contender("peer", []), 10, optional=True),
            Planned(Contender("once", []), 10, rounds=1),
        ],
        not_run,
    )

    assert made == ["svc-1", "peer-1", "once", "svc-2", "peer-2", "svc-3"]
    assert [(r.name, r.throughput_rps, r.rounds) for r in rows] == [
        ("svc", 6.0, [5.0, 7.0, 6.0]),
        ("once", 1.0, None),
    ]
    assert not_run == {"peer": "peer-2 stopped: last line of peer-2"}


async def test_a_contender_that_is_not_optional_ends_the_bench_when_it_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fake_run(contender: Contender, records: int, *, keys: int | None, label: str) -> Run:
        raise RuntimeError(f"{label} stopped")

    monkeypatch.setattr(rounds, "run_contender", fake_run)

    with pytest.raises(RuntimeError, match="svc-1 stopped"):
        await in_rounds([Planned(Contender("svc", []), 10)], {})
