"""Record handlers: JSON events to outputs, the dead-letter guard and envelope, retries, tracing."""

from kafka_delivery.handlers.dead_letters import DeadLetterGuard
from kafka_delivery.handlers.envelope import original_headers, read_envelope
from kafka_delivery.handlers.json_events import JsonHandler
from kafka_delivery.handlers.retry import DelayGate, RetryPolicy, RetryTopic
from kafka_delivery.handlers.tracing import RecordTracing

__all__ = [
    "DeadLetterGuard",
    "DelayGate",
    "JsonHandler",
    "RecordTracing",
    "RetryPolicy",
    "RetryTopic",
    "original_headers",
    "read_envelope",
]
