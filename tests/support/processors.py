"""Processors the service loads by setting (`ORDER_SERVICE_PROCESSING__PROCESSOR=tests.support.processors:…`).

`flaky` fails on purpose, chosen by order id:
- `transient-K-...` fails K times with ConnectionError (a transient error), then is processed;
- `always-...` always fails transiently;
- `bug-...` raises ValueError, a permanent error;
- anything else is processed by the real rules.

`slow` is async and waits on a simulated remote call: a random 1-30 ms; 2 % of orders (chosen by
order id, `fails_first`) fail their first attempt in this process with ConnectionError, a transient
error. Every call appends `pid order_id start|end` to the file named by TEST_CALL_LOG, so a test can
check that one key's calls never overlap and come in offset order.
"""

import asyncio
import os
import random
import zlib
from collections import Counter

from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy, process_order

failures: Counter[str] = Counter()
attempts: Counter[str] = Counter()
_log: list[int] = []


def flaky(order: OrderCreated, policy: OrderPolicy) -> OrderProcessed:
    kind, _, rest = order.order_id.partition("-")
    if kind == "bug":
        raise ValueError(f"rule crashed on {order.order_id}")
    if kind == "always" or (kind == "transient" and failures[order.order_id] < int(rest.split("-")[0])):
        failures[order.order_id] += 1
        raise ConnectionError(f"pricing service unreachable (failure {failures[order.order_id]})")
    return process_order(order, policy)


def _note(order_id: str, what: str) -> None:
    if not _log:  # opened at the first call: importing this module (from a test) needs no file
        _log.append(os.open(os.environ["TEST_CALL_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    os.write(_log[0], f"{os.getpid()} {order_id} {what}\n".encode())


def fails_first(order_id: str) -> bool:
    return zlib.crc32(order_id.encode()) % 50 == 0


async def slow(order: OrderCreated, policy: OrderPolicy) -> OrderProcessed:
    _note(order.order_id, "start")
    try:
        await asyncio.sleep(random.uniform(0.001, 0.030))
        attempts[order.order_id] += 1
        if fails_first(order.order_id) and attempts[order.order_id] == 1:
            raise ConnectionError(f"stock service timed out for {order.order_id}")
        return process_order(order, policy)
    finally:
        _note(order.order_id, "end")
