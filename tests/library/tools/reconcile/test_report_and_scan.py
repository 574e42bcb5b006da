"""Reconciliation: the JSON form of the report, the input ranges, and the scan of the topics.

The matching itself is covered by test_reconciler.py; this file adds only what that one
does not assert, and the scan that reads the topics' ranges (over a fake consumer).
"""

from typing import Any

import pytest
from aiokafka import TopicPartition

from kafka_delivery.errors import KafkaUnreachable
from kafka_delivery.tools.reconcile.model import Outcome, OutcomeKind, TopicPartitionOffset, ranges_of
from kafka_delivery.tools.reconcile.reconciler import reconcile
from kafka_delivery.tools.reconcile.scan import scan
from tests.support.fakes import FakeConsumer, records


def out(at: int, input_offset: int) -> Outcome:
    return Outcome(
        OutcomeKind.OUTPUT, TopicPartitionOffset("out", 0, at), TopicPartitionOffset("in", 0, input_offset)
    )


def test_the_report_as_json_names_ranges_counts_and_offenders() -> None:
    report = reconcile(
        [TopicPartitionOffset("in", 0, 0), TopicPartitionOffset("in", 0, 1)], [out(0, 0), out(1, 0)]
    )
    data = report.as_dict()
    assert data["ranges"] == [{"topic": "in", "partition": 0, "from_offset": 0, "end_offset": 2}]
    assert data["records_read"] == {"input": 2, "output": 2, "dead_letter": 0, "retry": 0}
    assert (data["counts"]["missing"], data["counts"]["duplicates"]) == (1, 1)
    assert data["missing"] == [{"topic": "in", "partition": 0, "offset": 1}]
    assert data["duplicates"] == [
        {
            "input": {"topic": "in", "partition": 0, "offset": 0},
            "outcomes": [
                {"topic": "out", "partition": 0, "offset": 0},
                {"topic": "out", "partition": 0, "offset": 1},
            ],
        }
    ]
    assert (data["unmatched"], data["order_violations"], data["outside_range"], data["unattributed"]) == (
        [],
        [],
        [],
        [],
    )


def test_the_json_of_order_violations_and_strays() -> None:
    outcomes = [
        out(0, 1),
        out(1, 0),
        out(2, 7),
        Outcome(OutcomeKind.DEAD_LETTER, TopicPartitionOffset("in.dlq", 0, 4), None),
    ]
    data = reconcile([TopicPartitionOffset("in", 0, 0), TopicPartitionOffset("in", 0, 1)], outcomes).as_dict()
    assert data["order_violations"] == [
        {
            "outcome": {"topic": "out", "partition": 0, "offset": 1},
            "input": {"topic": "in", "partition": 0, "offset": 0},
            "after_input_offset": 1,
        }
    ]
    assert data["outside_range"] == [
        {
            "outcome": {"topic": "out", "partition": 0, "offset": 2},
            "input": {"topic": "in", "partition": 0, "offset": 7},
        }
    ]
    assert data["unattributed"] == [
        {"outcome": {"topic": "in.dlq", "partition": 0, "offset": 4}, "input": None}
    ]


def test_ranges_span_the_inputs_of_each_partition() -> None:
    assert ranges_of(
        [TopicPartitionOffset("in", 0, 5), TopicPartitionOffset("in", 0, 2), TopicPartitionOffset("in", 1, 7)]
    ) == {
        ("in", 0): (2, 6),
        ("in", 1): (7, 8),
    }
    assert str(TopicPartitionOffset("in", 0, 5)) == "in/0/5"


async def test_a_scan_reads_each_range_past_markers_and_names_the_partitions_that_make_no_progress() -> None:
    tp0, tp1, out = TopicPartition("in", 0), TopicPartition("in", 1), TopicPartition("out", 0)
    # in/0: offset 2 is a transaction marker, 4 lies past the range; in/1 has nothing in range.
    log = [*records("in", 0, [0, 1, 3, 4]), *records("in", 1, [0, 1]), *records("out", 0, [0])]
    consumer = FakeConsumer([tp0, tp1, out], log=log)
    seen: list[Any] = []
    steps: list[tuple[int, int]] = []
    bounds = {tp0: (1, 4), tp1: (2, 2), out: (0, 1)}
    await scan(consumer, bounds, {"in": seen.append, "out": seen.append}, 5.0, lambda *s: steps.append(s))
    assert sorted((r.topic, r.partition, r.offset) for r in seen) == [
        ("in", 0, 1),
        ("in", 0, 3),
        ("out", 0, 0),
    ]
    assert steps[0] == (0, 4)
    assert steps[-1] == (4, 4)
    assert consumer.paused == {tp0, tp1, out}, "each partition paused once read (or with nothing to read)"

    stalled = FakeConsumer([out], log=records("out", 0, [0]))
    stalled.stuck = {out}
    with pytest.raises(KafkaUnreachable, match=r"^no progress reading out/0 for 0\.05s$"):
        await scan(stalled, {out: (0, 1)}, {"out": seen.append}, 0.05, None)
