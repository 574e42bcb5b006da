"""Logging: one JSON object per line (or readable text for `make run`), with the record in hand."""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from kafka_delivery.logs import current_record, tame_aiokafka

current_order_id: ContextVar[str | None] = ContextVar("current_order_id", default=None)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


def context_fields() -> dict[str, Any]:
    """Topic, partition, offset, order_id and trace_id of what is being processed, when known."""
    fields: dict[str, Any] = {}
    if (record := current_record.get()) is not None:
        fields.update(topic=record.topic, partition=record.partition, offset=record.offset)
        # Records are keyed by order id; the decoded order's own id wins once it is known.
        order_id = current_order_id.get() or (record.key.decode(errors="replace") if record.key else None)
        if order_id:
            fields["order_id"] = order_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["trace_id"] = format(span.trace_id, "032x")
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        line.update(context_fields())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s - %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = context_fields()
        suffix = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{super().format(record)}  [{suffix}]" if suffix else super().format(record)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    tame_aiokafka(shown_on=handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # The service's own lines and the delivery library's at the configured level; other libraries'
    # only from WARNING.
    for name in ("order_service", "kafka_delivery", "uvicorn.error"):
        logging.getLogger(name).setLevel(level)
