"""Logging: one JSON object per line (or readable text for `make run`), with the record in hand."""

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from kafka_delivery.logs import current_record

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


@dataclass(slots=True)
class _Window:
    start: float
    suppressed: int = 0


class RepeatFilter(logging.Filter):
    """Passes the first of repeated aiokafka records, then at most one per window, with a count."""

    def __init__(
        self, window_s: float = 60.0, *, max_keys: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        # Least recently passed first, so that eviction drops the key quiet the longest.
        self._windows: OrderedDict[tuple[str, str, Hashable], _Window] = OrderedDict()
        # Handlers filter outside their lock, and aiokafka may log from more than one thread.
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "aiokafka" and not record.name.startswith("aiokafka."):
            return True
        key = (record.name, str(record.msg), _broker_of(record.args))
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window.start < self._window_s:
                window.suppressed += 1
                return False
            self._windows[key] = _Window(now)
            self._windows.move_to_end(key)
            if len(self._windows) > self._max_keys:
                self._windows.popitem(last=False)
        if window is not None and window.suppressed:
            _mark_repeated(record, window.suppressed, now - window.start)
        return True


def _broker_of(args: Any) -> Hashable:
    """The first argument when it can name a host or node id; error texts vary, so they are no key."""
    first = args[0] if isinstance(args, tuple) and args else None
    if isinstance(first, int) and not isinstance(first, bool):
        return first
    if isinstance(first, str) and len(first) <= 255 and not any(c.isspace() for c in first):
        return first
    if isinstance(first, list | tuple | set | frozenset) and all(isinstance(n, int | str) for n in first):
        return tuple(sorted(map(str, first)))
    return None


def _mark_repeated(record: logging.LogRecord, count: int, elapsed_s: float) -> None:
    # The suffix has no '%', so the record's own args still format the message.
    record.msg = f"{record.msg} (repeated {count} times in {elapsed_s:.0f}s)"
    record.suppressed = count
    # The traceback went out with the first record of the key; a repeat's would only be noise.
    record.exc_info = None
    record.exc_text = None


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # aiokafka's reconnect loop logs thousands of identical errors per broker outage.
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("order_service", "uvicorn.error"):
        logging.getLogger(name).setLevel(level)
