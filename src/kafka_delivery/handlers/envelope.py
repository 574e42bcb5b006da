"""The dead-letter envelope: the original record, unchanged, plus `dlq.*` headers (version 1)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka_delivery.errors import ErrorCategory
from kafka_delivery.handlers.retry import origin, without_retry_headers
from kafka_delivery.headers import (
    DLQ_ATTEMPTS,
    DLQ_CONSUMER_GROUP,
    DLQ_ENVELOPE_VERSION,
    DLQ_ERROR_CATEGORY,
    DLQ_ERROR_MESSAGE,
    DLQ_ERROR_TYPE,
    DLQ_FAILED_AT,
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TIMESTAMP,
    DLQ_ORIGINAL_TOPIC,
    DLQ_PREFIX,
)
from kafka_delivery.types import Headers, InputRecord, OutgoingRecord

ENVELOPE_VERSION = "1"


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
        DLQ_ENVELOPE_VERSION: ENVELOPE_VERSION,
        DLQ_ORIGINAL_TOPIC: first.topic,
        DLQ_ORIGINAL_PARTITION: str(first.partition),
        DLQ_ORIGINAL_OFFSET: str(first.offset),
        DLQ_ORIGINAL_TIMESTAMP: str(first.timestamp),
        DLQ_CONSUMER_GROUP: group_id,
        DLQ_ERROR_CATEGORY: failure.category.value,
        DLQ_ERROR_TYPE: failure.error_type,
        DLQ_ERROR_MESSAGE: failure.message,
        DLQ_ATTEMPTS: str(failure.attempts),
        DLQ_FAILED_AT: when,
    }
    headers: Headers = [
        *without_retry_headers(record.headers),
        *((k, v.encode()) for k, v in envelope.items()),
    ]
    return OutgoingRecord(topic=topic, key=record.key, value=record.value, headers=headers)


def read_envelope(headers: Headers) -> Mapping[str, str]:
    """The `dlq.*` headers of a dead-letter record, decoded; the newest envelope wins."""
    return {k: v.decode(errors="replace") for k, v in headers if k.startswith(DLQ_PREFIX)}


def original_headers(headers: Headers) -> Headers:
    """A dead letter's headers but the `dlq.*` ones: what the failed record carried, less any
    envelope or re-drive mark of an earlier round."""
    return [(k, v) for k, v in headers if not k.startswith(DLQ_PREFIX)]
