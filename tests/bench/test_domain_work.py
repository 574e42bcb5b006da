"""The run `domain-work`: order_work's outcome over the bench's orders, timed in the bench's process."""

from bench.throughput.cpu_bound.domain_work import domain_work, time_domain_work


def test_the_domain_work_is_timed_per_order_over_every_generated_order() -> None:
    run = time_domain_work(300, label="domain-work-1")

    assert (run.name, run.records) == ("domain-work-1", 300)
    assert run.cpu_us_per_record is not None
    assert run.cpu_us_per_record > 0
    assert run.throughput_rps > 0
    # No Kafka: no latency, and no process of its own to measure.
    assert (run.latency_p99_ms, run.peak_rss_mb) == (None, None)


def test_its_row_is_the_median_of_its_rounds() -> None:
    row = domain_work(100, rounds=3)

    assert row.name == "domain-work"
    assert row.rounds is not None
    assert len(row.rounds) == 3
    assert row.throughput_rps == sorted(row.rounds)[1]
