import itertools
import json
import logging
import sys
import time
from collections.abc import Iterator

import pytest

from kafka_delivery.logs import ConnectionErrors, RepeatFilter
from order_service.adapters.logs import JsonFormatter, configure_logging

TEMPLATES = [
    ("aiokafka", 'Unable connect to "%s:%s": %s'),
    ("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s"),
    ("aiokafka.conn", "Unable connect to node with id %s: %s"),
]
HOSTS = ["kafka-1", "kafka-2", "kafka-3"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, host: str, *, exc: bool = False) -> logging.LogRecord:
    args = (host, 9092, OSError(111, "Connect call failed")) if msg.count("%s") == 3 else (host, "refused")
    exc_info = None
    if exc:
        try:
            raise ConnectionRefusedError(111, "refused")
        except ConnectionRefusedError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)


def outage(clock: FakeClock, count: int, seconds: float) -> Iterator[logging.LogRecord]:
    """`count` records cycling over 3 templates x 3 hosts, spread evenly over `seconds`."""
    keys = itertools.cycle([(name, msg, host) for name, msg in TEMPLATES for host in HOSTS])
    for _, (name, msg, host) in zip(range(count), keys, strict=False):
        clock.now += seconds / count
        yield record(name, msg, host)


def test_an_outage_yields_one_line_per_template_and_broker() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(window_s=60, clock=clock)

    passed = [r for r in outage(clock, 5000, seconds=20) if repeats.filter(r)]

    assert len(passed) == 9
    assert not any(hasattr(r, "suppressed") for r in passed)


def test_after_the_window_a_repeat_passes_with_the_count_of_suppressed_ones() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(window_s=60, clock=clock)
    first = sum(repeats.filter(r) for r in outage(clock, 5000, seconds=20))
    clock.now += 60

    later = [r for r in outage(clock, 9, seconds=1) if repeats.filter(r)]

    assert len(later) == 9
    assert sum(getattr(r, "suppressed", 0) for r in later) == 5000 - first
    assert all(
        json.loads(JsonFormatter().format(r))["suppressed"] == getattr(r, "suppressed", None) for r in later
    )


def test_repeats_within_the_window_stay_suppressed_after_a_summary() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(window_s=60, clock=clock)
    sample = record(*TEMPLATES[0], HOSTS[0])
    assert repeats.filter(sample)
    assert not repeats.filter(sample)
    clock.now += 61
    assert repeats.filter(record(*TEMPLATES[0], HOSTS[0]))

    assert not repeats.filter(record(*TEMPLATES[0], HOSTS[0]))


def test_the_first_keeps_its_traceback_and_a_repeat_summary_drops_it() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(window_s=60, clock=clock)
    first = record(*TEMPLATES[1], HOSTS[0], exc=True)
    assert repeats.filter(first)
    assert not repeats.filter(record(*TEMPLATES[1], HOSTS[0], exc=True))
    clock.now += 61
    summary = record(*TEMPLATES[1], HOSTS[0], exc=True)

    assert repeats.filter(summary)
    assert first.exc_info is not None
    assert summary.exc_info is None
    assert "exception" not in json.loads(JsonFormatter().format(summary))


def test_other_loggers_are_never_filtered() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(window_s=60, clock=clock)

    for name in ("kafka_delivery.engine.engine", "aiokafkax", "uvicorn.error"):
        assert all(repeats.filter(record(name, TEMPLATES[0][1], HOSTS[0])) for _ in range(100))


def test_keys_are_capped_and_the_oldest_is_evicted() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(window_s=60, max_keys=2, clock=clock)
    for host in ("a", "b", "c"):
        assert repeats.filter(record(*TEMPLATES[1], host))

    assert repeats.filter(record(*TEMPLATES[1], "a"))
    assert not repeats.filter(record(*TEMPLATES[1], "c"))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("order_service", "uvicorn.error")}
    yield
    root.handlers[:], root.level = saved
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_installs_the_filter_on_its_handler() -> None:
    configure_logging("INFO", "json")

    (handler,) = logging.getLogger().handlers
    assert any(isinstance(f, RepeatFilter) for f in handler.filters)


def test_a_connection_error_names_only_the_causes_logged_since_its_call_began() -> None:
    errors = ConnectionErrors()
    log = logging.getLogger("aiokafka.conn.test")
    log.addHandler(errors)
    try:
        log.warning('Unable connect to "%s:%s": %s', "old", 1, ConnectionRefusedError())
        began = time.monotonic()
        log.warning('Unable connect to "%s:%s": %s', "new", 2, TimeoutError())
    finally:
        log.removeHandler(errors)
    assert errors.summary(since=began) == "new:2: no answer"
    assert errors.summary() == "old:1: connection refused; new:2: no answer"
