from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from kafka_delivery.errors import ErrorCategory, safe_message
from kafka_delivery.handlers.envelope import Failure, dead_letter, read_envelope


def record(headers: list[tuple[str, bytes]]) -> ConsumerRecord:
    return ConsumerRecord(
        topic="in",
        partition=3,
        offset=42,
        timestamp=1700000000000,
        timestamp_type=0,
        key=b"k-1",
        value=b"\xff raw",
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=5,
        headers=headers,
    )


def test_dead_letter_keeps_key_value_and_headers_and_adds_the_envelope() -> None:
    original_headers = [("trace", b"abc"), ("binary", b"\x00\xff")]
    failure = Failure(ErrorCategory.VALIDATION, "ValidationError", "total: must be > 0", attempts=2)
    when = datetime(2026, 1, 1, tzinfo=UTC)

    letter = dead_letter(record(original_headers), failure, topic="in.dlq", group_id="g", failed_at=when)

    assert (letter.topic, letter.key, letter.value) == ("in.dlq", b"k-1", b"\xff raw")
    assert letter.headers[:2] == original_headers
    assert read_envelope(letter.headers) == {
        "dlq.envelope.version": "1",
        "dlq.original.topic": "in",
        "dlq.original.partition": "3",
        "dlq.original.offset": "42",
        "dlq.original.timestamp": "1700000000000",
        "dlq.consumer.group": "g",
        "dlq.error.category": "validation",
        "dlq.error.type": "ValidationError",
        "dlq.error.message": "total: must be > 0",
        "dlq.attempts": "2",
        "dlq.failed.at": "2026-01-01T00:00:00.000+00:00",
    }


def test_error_messages_are_truncated_and_never_carry_secrets() -> None:
    exc = RuntimeError("login failed for user=app password=hunter2 with token: abc123 and s3cr3t-value")
    message = safe_message(exc, secrets=["s3cr3t-value"], limit=512)
    assert "hunter2" not in message
    assert "abc123" not in message
    assert "s3cr3t-value" not in message
    assert "login failed" in message
    assert len(safe_message(RuntimeError("x" * 2000), limit=100)) == 100
