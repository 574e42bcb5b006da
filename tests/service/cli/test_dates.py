"""`--since`/`--until` of `dlq replay` and `verify`: dates without a timezone are UTC."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
import typer
from aiokafka import ConsumerRecord

from kafka_delivery.headers import DLQ_FAILED_AT
from kafka_delivery.tools.redrive import ReplayFilter
from order_service.cli.common import utc_datetime


def letter(failed_at: str) -> ConsumerRecord:
    return ConsumerRecord(
        topic="in.dlq",
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"x",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=1,
        headers=[(DLQ_FAILED_AT, failed_at.encode())],
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T10:30", datetime(2026, 1, 1, 10, 30, tzinfo=UTC)),
        ("2026-01-01T10:30Z", datetime(2026, 1, 1, 10, 30, tzinfo=UTC)),
        ("2026-01-01T10:30+02:00", datetime(2026, 1, 1, 10, 30, tzinfo=timezone(timedelta(hours=2)))),
    ],
)
def test_dates_without_a_timezone_are_utc(text: str, expected: datetime) -> None:
    parsed = utc_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_a_date_that_is_not_iso_8601_is_a_usage_error() -> None:
    with pytest.raises(typer.BadParameter, match="ISO-8601"):
        utc_datetime("yesterday")


def test_filters_compare_naive_and_aware_times_as_utc() -> None:
    record = letter("2026-03-01T12:00:00.000+00:00")
    assert ReplayFilter(failed_after=datetime(2026, 1, 1)).matches(record)
    assert not ReplayFilter(failed_before=datetime(2026, 3, 1, 12)).matches(record)
    assert ReplayFilter(failed_after=datetime(2026, 3, 1, 13, tzinfo=timezone(timedelta(hours=2)))).matches(
        record
    )
    # An envelope written without a timezone is read as UTC too.
    assert ReplayFilter(failed_before=datetime(2026, 3, 2, tzinfo=UTC)).matches(letter("2026-03-01T12:00:00"))
