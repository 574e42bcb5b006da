"""Re-driving dead letters: which ones a filter selects, and what a replayed record looks like."""

from datetime import UTC, datetime
from typing import Any

import pytest

from kafka_delivery.errors import ErrorCategory
from kafka_delivery.handlers.envelope import Failure, dead_letter
from kafka_delivery.handlers.retry import RetryTopic
from kafka_delivery.headers import DLQ_REPLAYED_FROM
from kafka_delivery.tools.redrive import ReplayFilter, replay_record
from tests.support.fakes import record

ORIGINAL_HEADERS = [("trace", b"abc"), ("binary", b"\x00\xff")]


def letter(
    offset: int,
    *,
    category: ErrorCategory = ErrorCategory.VALIDATION,
    error_type: str = "ValidationError",
    failed_at: datetime = datetime(2026, 3, 1, 12, tzinfo=UTC),
    source: Any = None,
) -> Any:
    """A dead letter as read back from the DLQ at `offset`."""
    source = source or record("in", 4, 17, key=b"k-9", value=b'{"x":1}', headers=ORIGINAL_HEADERS)
    failure = Failure(category, error_type, "boom", attempts=1)
    out = dead_letter(source, failure, topic="in.dlq", group_id="g", failed_at=failed_at)
    return record(out.topic, 1, offset, key=out.key, value=out.value, headers=out.headers)


def test_an_empty_filter_matches_every_dead_letter() -> None:
    assert ReplayFilter().matches(letter(0))
    # A record without an envelope (written by something else) is matched by the empty filter only.
    assert ReplayFilter().matches(record("in.dlq", 0, 0))
    assert not ReplayFilter(categories=frozenset({"validation"})).matches(record("in.dlq", 0, 0))


@pytest.mark.parametrize(
    ("filter_", "matching_offsets"),
    [
        (ReplayFilter(categories=frozenset({"processing"})), [1, 3]),
        (ReplayFilter(categories=frozenset({"processing", "validation"})), [0, 1, 2, 3]),
        (ReplayFilter(error_types=frozenset({"TimeoutError"})), [3]),
        (ReplayFilter(categories=frozenset({"processing"}), error_types=frozenset({"KeyError"})), [1]),
        (ReplayFilter(from_offset=1, to_offset=2), [1, 2]),
        (ReplayFilter(failed_after=datetime(2026, 3, 2, tzinfo=UTC)), [2, 3]),
        (ReplayFilter(failed_before=datetime(2026, 3, 2, tzinfo=UTC)), [0, 1]),
        (
            ReplayFilter(
                failed_after=datetime(2026, 3, 2, tzinfo=UTC), failed_before=datetime(2026, 3, 3, tzinfo=UTC)
            ),
            [2],
        ),
    ],
)
def test_filters_select_by_category_type_offset_and_failure_time(
    filter_: ReplayFilter, matching_offsets: list[int]
) -> None:
    letters = [
        letter(0, failed_at=datetime(2026, 3, 1, tzinfo=UTC)),
        letter(1, category=ErrorCategory.PROCESSING, error_type="KeyError"),
        letter(2, failed_at=datetime(2026, 3, 2, tzinfo=UTC)),
        letter(
            3,
            category=ErrorCategory.PROCESSING,
            error_type="TimeoutError",
            failed_at=datetime(2026, 3, 4, tzinfo=UTC),
        ),
    ]
    assert [r.offset for r in letters if filter_.matches(r)] == matching_offsets


def test_a_replayed_record_goes_back_to_its_original_topic_as_it_was() -> None:
    replayed = replay_record(letter(8))
    assert (replayed.topic, replayed.key, replayed.value) == ("in", b"k-9", b'{"x":1}')
    assert replayed.headers == [*ORIGINAL_HEADERS, (DLQ_REPLAYED_FROM, b"in.dlq/1/8")]


def test_a_letter_from_the_retry_topic_is_replayed_to_the_input_topic_without_retry_headers() -> None:
    source = record("in", 4, 17, key=b"k-9", value=b"v", headers=ORIGINAL_HEADERS)
    hop = RetryTopic("in.retry").hop(source, attempts=3)
    on_retry = record(hop.topic, 0, 5, key=hop.key, value=hop.value, headers=hop.headers)

    replayed = replay_record(letter(2, source=on_retry))

    assert replayed.topic == "in"
    assert replayed.headers == [*ORIGINAL_HEADERS, (DLQ_REPLAYED_FROM, b"in.dlq/1/2")]
