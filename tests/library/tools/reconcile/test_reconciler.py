"""Reconciliation over small tuples: which inputs have no outcome, several, or outcomes out of order."""

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from pydantic import BaseModel

from kafka_delivery.errors import ErrorCategory
from kafka_delivery.handlers.envelope import Failure, dead_letter
from kafka_delivery.handlers.json_events import JsonHandler
from kafka_delivery.handlers.retry import RetryTopic
from kafka_delivery.headers import INPUT_OFFSET, INPUT_TOPIC, INPUT_VIA
from kafka_delivery.tools.reconcile.model import (
    Outcome,
    OutcomeKind,
    TopicPartitionOffset,
    dead_letter_outcome,
    output_outcome,
    retried_input,
)
from kafka_delivery.tools.reconcile.reconciler import Reconciler, reconcile
from kafka_delivery.types import OutgoingRecord

IN, OUT, DLQ, RETRY = "in", "out", "in.dlq", "in.retry"


def inputs(partition: int, offsets: Sequence[int]) -> list[TopicPartitionOffset]:
    return [TopicPartitionOffset(IN, partition, o) for o in offsets]


def outputs(
    input_offsets: Sequence[int], *, partition: int = 0, out_partition: int = 0, first: int = 0
) -> list[Outcome]:
    """Outputs of input partition `partition`'s offsets, in this order, on one output partition."""
    return [
        Outcome(
            OutcomeKind.OUTPUT,
            TopicPartitionOffset(OUT, out_partition, first + n),
            TopicPartitionOffset(IN, partition, offset),
        )
        for n, offset in enumerate(input_offsets)
    ]


def test_every_input_with_one_outcome_in_order_is_clean() -> None:
    report = reconcile(
        inputs(0, range(5)) + inputs(1, range(3)),
        outputs([0, 1, 2, 3, 4]) + outputs([0, 1, 2], partition=1, out_partition=1),
    )
    assert report.violations() == 0
    assert (report.inputs, report.processed, report.dead_lettered) == (8, 8, 0)
    assert (report.missing, report.duplicates, report.unmatched, report.order_violations) == (0, 0, 0, 0)
    assert report.ranges == {(IN, 0): (0, 5), (IN, 1): (0, 3)}


def test_an_input_without_outcome_is_missing() -> None:
    report = reconcile(inputs(0, range(5)), outputs([0, 1, 3, 4]))
    assert report.missing == 1
    assert report.missing_list == [TopicPartitionOffset(IN, 0, 2)]
    assert report.order_violations == 0, "a gap is not disorder"
    assert report.violations() == 1


def test_an_input_with_two_outcomes_is_a_duplicate_naming_both() -> None:
    report = reconcile(inputs(0, range(4)), outputs([0, 1, 2, 3], out_partition=0) + outputs([2], first=10))
    assert report.duplicates == 1
    [duplicate] = report.duplicate_list
    assert duplicate.input == TopicPartitionOffset(IN, 0, 2)
    assert duplicate.outcomes == (TopicPartitionOffset(OUT, 0, 2), TopicPartitionOffset(OUT, 0, 10))
    assert report.order_violations == 0
    assert report.violations() == 1
    assert report.violations(allow_duplicates=True) == 0


def test_an_output_and_a_dead_letter_of_one_input_are_duplicates() -> None:
    letter = Outcome(OutcomeKind.DEAD_LETTER, TopicPartitionOffset(DLQ, 0, 0), TopicPartitionOffset(IN, 0, 1))
    report = reconcile(inputs(0, range(3)), [*outputs([0, 1, 2]), letter])
    assert report.duplicates == 1
    assert report.duplicate_list[0].outcomes == (
        TopicPartitionOffset(DLQ, 0, 0),
        TopicPartitionOffset(OUT, 0, 1),
    )


def test_two_swapped_outputs_of_one_partition_are_an_order_violation() -> None:
    report = reconcile(inputs(0, range(5)), outputs([0, 1, 3, 2, 4]))
    assert (report.missing, report.duplicates) == (0, 0)
    assert report.order_violations == 1
    [violation] = report.order_violation_list
    assert violation.outcome == TopicPartitionOffset(OUT, 0, 3), (
        "the output of input 2, at output offset 3..."
    )
    assert violation.input == TopicPartitionOffset(IN, 0, 2)
    assert violation.after_offset == 3, "...came after the output of input 3"


def test_order_is_per_output_partition_and_per_input_partition() -> None:
    # Input partition 0's records go to two output partitions by key; partition 1's interleave with
    # them on output partition 0. Neither is disorder.
    spread = [
        Outcome(OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 0, 0), TopicPartitionOffset(IN, 0, 1)),
        Outcome(OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 1, 0), TopicPartitionOffset(IN, 0, 0)),
        Outcome(OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 0, 1), TopicPartitionOffset(IN, 1, 5)),
        Outcome(OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 0, 2), TopicPartitionOffset(IN, 0, 2)),
        Outcome(OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 0, 3), TopicPartitionOffset(IN, 1, 4)),
    ]
    report = reconcile(inputs(0, range(3)) + inputs(1, [4, 5]), spread)
    assert report.order_violations == 1, "only input partition 1's 5-then-4 on output partition 0"
    assert report.order_violation_list[0].input == TopicPartitionOffset(IN, 1, 4)


def test_a_dead_letter_is_the_outcome_of_its_input() -> None:
    letter = Outcome(OutcomeKind.DEAD_LETTER, TopicPartitionOffset(DLQ, 2, 0), TopicPartitionOffset(IN, 0, 2))
    report = reconcile(inputs(0, range(4)), [*outputs([0, 1, 3]), letter])
    assert report.violations() == 0
    assert (report.inputs, report.processed, report.dead_lettered) == (4, 3, 1)
    assert (report.outputs_read, report.dead_letters_read) == (3, 1)


def test_at_least_once_repeats_are_duplicates_but_not_order_violations() -> None:
    # A crash after acks, before the commit: the suffix 1..3 is processed again, in order.
    report = reconcile(inputs(0, range(5)), outputs([0, 1, 2, 3, 1, 2, 3, 4]))
    assert report.duplicates == 3
    assert [d.input.offset for d in report.duplicate_list] == [1, 2, 3]
    assert report.order_violations == 0
    assert report.violations(allow_duplicates=True) == 0


def test_a_repeat_does_not_hide_a_real_reordering() -> None:
    report = reconcile(inputs(0, range(4)), outputs([0, 2, 0, 1, 3]))
    assert report.order_violations == 1
    assert report.order_violation_list[0].input == TopicPartitionOffset(IN, 0, 1)


def test_outcomes_that_went_through_the_retry_topic_are_exempt_from_the_order_check() -> None:
    # Input 1 waited on the retry topic and came out last: its output says so (input.via)...
    late = Outcome(
        OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 0, 3), TopicPartitionOffset(IN, 0, 1), retried=True
    )
    report = reconcile(inputs(0, range(4)), [*outputs([0, 2, 3]), late])
    assert (report.violations(), report.retried) == (0, 1)
    # ...and without that mark it would be disorder.
    report = reconcile(inputs(0, range(4)), [*outputs([0, 2, 3]), late._replace(retried=False)])
    assert report.order_violations == 1

    # A dead letter carries no such mark: the hop on the retry topic tells.
    letter = Outcome(OutcomeKind.DEAD_LETTER, TopicPartitionOffset(DLQ, 0, 0), TopicPartitionOffset(IN, 0, 1))
    early = Outcome(OutcomeKind.DEAD_LETTER, TopicPartitionOffset(DLQ, 0, 1), TopicPartitionOffset(IN, 0, 0))
    report = reconcile(inputs(0, range(2)), [letter, early], retried=[TopicPartitionOffset(IN, 0, 1)])
    assert (report.violations(), report.retried, report.retry_hops_read) == (0, 1, 1)
    assert reconcile(inputs(0, range(2)), [letter, early]).order_violations == 1


def test_outcomes_naming_no_input_in_range() -> None:
    strays = [
        Outcome(
            OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 1, 0), TopicPartitionOffset(IN, 0, 3)
        ),  # in range, but no such input was read
        Outcome(
            OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 1, 1), TopicPartitionOffset(IN, 0, 99)
        ),  # beyond the range: information
        Outcome(
            OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 1, 2), TopicPartitionOffset("elsewhere", 0, 1)
        ),  # another topic: information
        Outcome(
            OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 1, 3), None
        ),  # no provenance headers: information
    ]
    report = reconcile(
        inputs(0, [0, 1, 2, 4]), [*outputs([0, 1, 2, 4], first=10), *strays], ranges={(IN, 0): (0, 5)}
    )
    assert report.unmatched == 1
    assert report.unmatched_list[0].input == TopicPartitionOffset(IN, 0, 3)
    assert report.unmatched_list[0].outcomes == (TopicPartitionOffset(OUT, 1, 0),)
    assert report.outside_range == 2
    assert [s.outcome.offset for s in report.outside_range_list] == [1, 2]
    assert report.unattributed == 1
    assert report.violations() == 1, "only the unmatched one"


def test_lists_are_capped_but_counts_are_not() -> None:
    report = reconcile(inputs(0, range(100)), [], listed=3)
    assert report.missing == 100
    assert report.missing_list == inputs(0, [0, 1, 2])


# --- from records: the provenance headers the service writes ---------------------------------------


class Order(BaseModel):
    order_id: str


def record(topic: str, partition: int, offset: int, out: OutgoingRecord | None = None) -> ConsumerRecord:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=1_700_000_000_000,
        timestamp_type=0,
        key=out.key if out else b"o-1",
        value=out.value if out else b'{"order_id": "o-1"}',
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=20,
        headers=list(out.headers) if out else [("trace", b"t-1")],
    )


async def _same(order: Order) -> Order:
    return order


def handler() -> JsonHandler[Order, Order]:
    return JsonHandler(
        input_model=Order,
        process=_same,
        output_topic=OUT,
        key_of=lambda order: order.order_id,
        max_value_bytes=1024,
    )


async def test_an_output_names_its_input() -> None:
    [out] = await handler()(record(IN, 3, 42))
    assert (INPUT_TOPIC, b"in") in out.headers
    assert output_outcome(record(OUT, 1, 7, out)) == Outcome(
        OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 1, 7), TopicPartitionOffset(IN, 3, 42)
    )


async def test_after_the_retry_topic_the_output_and_the_dead_letter_name_the_original_input() -> None:
    hop = RetryTopic(RETRY).hop(record(IN, 3, 42), attempts=3)
    on_retry = record(RETRY, 0, 5, hop)
    assert retried_input(on_retry) == TopicPartitionOffset(IN, 3, 42)

    [out] = await handler()(on_retry)
    assert (INPUT_VIA, b"in.retry/0/5") in out.headers
    assert output_outcome(record(OUT, 1, 7, out)) == Outcome(
        OutcomeKind.OUTPUT, TopicPartitionOffset(OUT, 1, 7), TopicPartitionOffset(IN, 3, 42), retried=True
    )

    failure = Failure(ErrorCategory.RETRIES_EXHAUSTED, "ConnectionError", "down", attempts=6)
    letter = dead_letter(on_retry, failure, topic=DLQ, group_id="g.retry")
    assert dead_letter_outcome(record(DLQ, 0, 9, letter)) == Outcome(
        OutcomeKind.DEAD_LETTER, TopicPartitionOffset(DLQ, 0, 9), TopicPartitionOffset(IN, 3, 42)
    )


def test_an_outcome_without_readable_provenance_names_nothing() -> None:
    out = OutgoingRecord(topic=OUT, value=b"{}", headers=[(INPUT_TOPIC, b"in"), (INPUT_OFFSET, b"x")])
    assert output_outcome(record(OUT, 0, 0, out)).input is None


def test_reporting_twice_counts_once() -> None:
    reconciler = Reconciler({(IN, 0): (0, 3)})
    for ref in inputs(0, range(3)):
        reconciler.add_input(ref)
    for outcome in outputs([0, 2, 1, 1]):
        reconciler.add_outcome(outcome)
    first, second = reconciler.report(), reconciler.report()
    assert first == second
    assert (second.inputs, second.duplicates, second.order_violations) == (3, 1, 1)
