"""Reconciliation: the JSON form of the report and the input ranges.

The matching itself is covered by tests/unit/test_reconcile.py; this file adds only what that one
does not assert.
"""

from order_service.messaging.reconcile import Kind, Outcome, Ref, ranges_of, reconcile


def out(at: int, input_offset: int) -> Outcome:
    return Outcome(Kind.OUTPUT, Ref("out", 0, at), Ref("in", 0, input_offset))


def test_the_report_as_json_names_ranges_counts_and_offenders() -> None:
    report = reconcile([Ref("in", 0, 0), Ref("in", 0, 1)], [out(0, 0), out(1, 0)])
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
    outcomes = [out(0, 1), out(1, 0), out(2, 7), Outcome(Kind.DEAD_LETTER, Ref("in.dlq", 0, 4), None)]
    data = reconcile([Ref("in", 0, 0), Ref("in", 0, 1)], outcomes).as_dict()
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
    assert ranges_of([Ref("in", 0, 5), Ref("in", 0, 2), Ref("in", 1, 7)]) == {
        ("in", 0): (2, 6),
        ("in", 1): (7, 8),
    }
    assert str(Ref("in", 0, 5)) == "in/0/5"
