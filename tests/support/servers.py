"""A server that a package of tests starts once and stops after its last test."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

T = TypeVar("T")


@contextmanager
def serving(
    start: Callable[[], T], stop: Callable[[], None], error: type[Exception], what: str
) -> Iterator[T]:
    """What `start` returns, and `stop` on the way out; a start that raises `error` fails the test
    in one line naming `what` (no traceback: the script's own message says why)."""
    try:
        started = start()
    except error as exc:
        pytest.fail(f"{what}: {exc}", pytrace=False)
    try:
        yield started
    finally:
        stop()
