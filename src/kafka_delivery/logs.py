"""The record being processed, for log lines written while it is."""

from contextvars import ContextVar

from kafka_delivery.types import InputRecord

current_record: ContextVar[InputRecord | None] = ContextVar("current_record", default=None)
