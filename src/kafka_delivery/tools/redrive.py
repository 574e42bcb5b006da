"""Re-driving dead letters: which ones to send back, and what they look like when they go."""

from dataclasses import dataclass
from datetime import UTC, datetime

from kafka_delivery.handlers.envelope import original_headers, read_envelope
from kafka_delivery.headers import (
    DLQ_ERROR_CATEGORY,
    DLQ_ERROR_TYPE,
    DLQ_FAILED_AT,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REPLAYED_FROM,
)
from kafka_delivery.types import InputRecord, OutgoingRecord


def _utc(when: datetime) -> datetime:
    """Times without a timezone are UTC: comparing them with aware ones would raise."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which dead letters to replay; `failed_after` and `failed_before` without a timezone are UTC."""

    categories: frozenset[str] = frozenset()
    error_types: frozenset[str] = frozenset()
    failed_after: datetime | None = None
    failed_before: datetime | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    def matches(self, record: InputRecord) -> bool:
        envelope = read_envelope(record.headers)
        failed_at = _utc(datetime.fromisoformat(envelope.get(DLQ_FAILED_AT, "1970-01-01T00:00:00+00:00")))
        return (
            (not self.categories or envelope.get(DLQ_ERROR_CATEGORY) in self.categories)
            and (not self.error_types or envelope.get(DLQ_ERROR_TYPE) in self.error_types)
            and (self.failed_after is None or failed_at >= _utc(self.failed_after))
            and (self.failed_before is None or failed_at < _utc(self.failed_before))
            and (self.from_offset is None or record.offset >= self.from_offset)
            and (self.to_offset is None or record.offset <= self.to_offset)
        )


def replay_record(record: InputRecord) -> OutgoingRecord:
    """The dead letter as it goes back: original topic and key, original headers, and where it came from."""
    envelope = read_envelope(record.headers)
    headers = original_headers(record.headers)
    headers.append((DLQ_REPLAYED_FROM, f"{record.topic}/{record.partition}/{record.offset}".encode()))
    return OutgoingRecord(
        topic=envelope[DLQ_ORIGINAL_TOPIC], key=record.key, value=record.value, headers=headers
    )
