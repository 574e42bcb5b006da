"""The dead-letter envelope: the original record, unchanged, plus `dlq.*` headers (version 1)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from order_service.messaging.errors import ErrorCategory
from order_service.messaging.records import Headers, InputRecord, OutgoingRecord
from order_service.messaging.retry import origin, without_retry_headers

ENVELOPE_VERSION = "1"
PREFIX = "dlq."


@dataclass(frozen=True, slots=True)
class Failure:
    category: ErrorCategory
    error_type: str
    message: str
    attempts: int


def dead_letter(
    record: InputRecord,
    failure: Failure,
    *,
    topic: str,
    group_id: str,
    failed_at: datetime | None = None,
) -> OutgoingRecord:
    """The dead-letter record for `record`: same key, value and headers, plus the envelope.

    A record that failed on the retry topic is dead-lettered as the input record it came from.
    """
    when = (failed_at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    first = origin(record)
    envelope = {
        "dlq.envelope.version": ENVELOPE_VERSION,
        "dlq.original.topic": first.topic,
        "dlq.original.partition": str(first.partition),
        "dlq.original.offset": str(first.offset),
        "dlq.original.timestamp": str(first.timestamp),
        "dlq.consumer.group": group_id,
        "dlq.error.category": failure.category.value,
        "dlq.error.type": failure.error_type,
        "dlq.error.message": failure.message,
        "dlq.attempts": str(failure.attempts),
        "dlq.failed.at": when,
    }
    headers: Headers = [
        *without_retry_headers(record.headers),
        *((k, v.encode()) for k, v in envelope.items()),
    ]
    return OutgoingRecord(topic=topic, key=record.key, value=record.value, headers=headers)


def read_envelope(headers: Headers) -> Mapping[str, str]:
    """The `dlq.*` headers of a dead-letter record, decoded; the newest envelope wins."""
    return {k: v.decode(errors="replace") for k, v in headers if k.startswith(PREFIX)}


def original_headers(headers: Headers) -> Headers:
    return [(k, v) for k, v in headers if not k.startswith(PREFIX)]
