"""Logging around Kafka: the record being processed, and aiokafka's logs tamed (`tame_aiokafka`).

aiokafka logs every failed attempt to reach a broker, over and over: its reconnect loop logs
thousands of identical errors per broker outage, and raises without the cause (refused, unknown
host, TLS). Every process that uses aiokafka tames it here, once, the same way.
"""

import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from kafka_delivery.types import InputRecord

current_record: ContextVar[InputRecord | None] = ContextVar("current_record", default=None)


def tame_aiokafka(*, shown_on: logging.Handler | None = None) -> None:
    """Collect why brokers could not be reached in `connection_errors`, and keep aiokafka's repeats out.

    `shown_on` is the handler that shows a long-running process's logs: aiokafka's records reach it,
    each repeat at most once a minute with a count (`RepeatFilter`). Without one (a command that
    fails in one line naming the cause), aiokafka's records are shown nowhere.
    """
    log = logging.getLogger("aiokafka")
    if connection_errors not in log.handlers:
        log.addHandler(connection_errors)
    if shown_on is None:
        log.propagate = False
    elif not any(isinstance(f, RepeatFilter) for f in shown_on.filters):
        shown_on.addFilter(RepeatFilter())


class ConnectionErrors(logging.Handler):
    """Why aiokafka could not connect to each broker: it logs the cause, and raises without it.

    Each cause keeps when it was logged: one process makes many calls (a test session, the bench),
    and an error message names only the causes of its own call (`summary(since=...)`).
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.causes: dict[str, tuple[float, str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        # e.g. 'Unable connect to "%s:%s": %s' % (host, port, OSError(...))
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and isinstance(args[-1], BaseException):
            where = ":".join(str(part) for part in args[:-1])
            self.causes[where] = (time.monotonic(), _describe(args[-1]))

    def summary(self, since: float = 0.0) -> str:
        """The causes logged at or after `since` (time.monotonic()), one per broker."""
        return "; ".join(f"{where}: {cause}" for where, (at, cause) in self.causes.items() if at >= since)


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, TimeoutError):
        return "no answer"
    text = str(error) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


connection_errors = ConnectionErrors()  # on aiokafka's logger once `tame_aiokafka` ran


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
