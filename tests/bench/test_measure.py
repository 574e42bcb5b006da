"""CPU per record: the contender's CPU over its throughput's window, from samples taken 0.1 s apart."""

import math

import pytest
from bench.throughput.measure import cpu_at, cpu_per_record, from_timestamps, p99_by_second

# (wall-clock time, CPU seconds): half a core from 100.0 to 102.0.
SAMPLES = [(100.0, 1.0), (100.5, 1.25), (101.0, 1.5), (102.0, 2.0)]


def test_cpu_between_samples_is_linear_and_at_a_sample_is_that_sample() -> None:
    assert cpu_at(SAMPLES, 100.5) == 1.25
    assert cpu_at(SAMPLES, 100.0) == 1.0
    assert cpu_at(SAMPLES, 101.5) == pytest.approx(1.75)
    # Before the first sample or after the last, nothing is known.
    assert cpu_at(SAMPLES, 99.9) is None
    assert cpu_at(SAMPLES, 102.1) is None


def test_cpu_per_record_is_the_cpu_of_the_window_over_its_records() -> None:
    # 0.75 CPU seconds from 100.25 to 101.75, over 1,000 records: 750 µs each.
    assert cpu_per_record(SAMPLES, first_s=100.25, last_s=101.75, records=1_000) == pytest.approx(750.0)


def test_a_window_too_short_or_outside_the_samples_has_no_cpu_per_record() -> None:
    assert cpu_per_record(SAMPLES, first_s=100.0, last_s=100.4, records=1_000) is None
    assert cpu_per_record(SAMPLES, first_s=101.0, last_s=103.0, records=1_000) is None
    assert cpu_per_record([], first_s=100.0, last_s=101.0, records=1_000) is None


def test_a_run_takes_its_cpu_per_record_over_the_window_of_its_throughput() -> None:
    # Four outputs from 100.25 s to 101.75 s (timestamps in ms), each 10 ms after its input.
    outputs = {b"a": 100_250, b"b": 100_750, b"c": 101_250, b"d": 101_750}
    inputs = {key: ts - 10 for key, ts in outputs.items()}

    run = from_timestamps("loop", inputs, outputs, 50.0, SAMPLES)

    assert run.records == 4
    assert run.throughput_rps == pytest.approx(4 / 1.5)
    assert run.cpu_us_per_record == pytest.approx(0.75 / 4 * 1e6)
    # Not sampled (a Java perf tool's row, or results from before the samples): none.
    assert from_timestamps("loop", inputs, outputs, 50.0).cpu_us_per_record is None


def test_each_seconds_p99_is_of_the_orders_that_arrived_in_that_second() -> None:
    # Arrivals at 0.0-0.99 s take 5 ms but one 90 ms; at 1.0-1.99 s 10 ms; none at 2 s; one at 3 s.
    inputs = {f"a{i}".encode(): i * 10 for i in range(100)}
    inputs |= {f"b{i}".encode(): 1000 + i * 10 for i in range(100)}
    inputs[b"c"] = 3500
    outputs = {key: at + 5 for key, at in inputs.items() if key.startswith(b"a")}
    outputs[b"a99"] = inputs[b"a99"] + 90
    outputs |= {key: at + 10 for key, at in inputs.items() if key.startswith(b"b")}
    outputs[b"c"] = 3520
    outputs[b"unknown"] = 9999  # an output with no input is no latency

    by_second = p99_by_second(inputs, outputs)

    assert len(by_second) == 4
    assert by_second[:2] == [90.0, 10.0]
    assert math.isnan(by_second[2])
    assert by_second[3] == 20.0


def test_a_run_without_matched_orders_has_no_seconds() -> None:
    assert p99_by_second({}, {}) == []
    assert p99_by_second({b"a": 1}, {b"b": 2}) == []
