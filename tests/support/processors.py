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
import contextlib
import os
import random
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable

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


# `recorded` is a factory (README, "Write your own processor"). Entering, the first record and
# exiting each append a line to the file named by TEST_LIFECYCLE_LOG: `enter`, `first <order id>`,
# and `exit committed=<sum of the group's committed offsets on the input topic>`, read from Kafka at
# exit, so a test can tell that the exit came after the last commit.
def _lifecycle(line: str) -> None:
    with open(os.environ["TEST_LIFECYCLE_LOG"], "a") as log:
        log.write(f"{os.getpid()} {line}\n")


async def _committed_sum() -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=os.environ["ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(os.environ["ORDER_SERVICE_CONSUMER__GROUP_ID"])
    finally:
        await admin.close()
    topic = os.environ["ORDER_SERVICE_TOPICS__INPUT"]
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


@contextlib.asynccontextmanager
async def recorded() -> AsyncIterator[Callable[[OrderCreated, OrderPolicy], OrderProcessed]]:
    _lifecycle("enter")
    seen: list[str] = []

    def process(order: OrderCreated, policy: OrderPolicy) -> OrderProcessed:
        if not seen:
            seen.append(order.order_id)
            _lifecycle(f"first {order.order_id}")
        return process_order(order, policy)

    try:
        yield process
    finally:
        _lifecycle(f"exit committed={await _committed_sum()}")


@contextlib.asynccontextmanager
async def refusing() -> AsyncIterator[Callable[[OrderCreated, OrderPolicy], OrderProcessed]]:
    """A factory whose enter fails, as one whose database is unreachable would."""
    raise RuntimeError("the pricing cache could not be loaded")
    yield process_order  # pragma: no cover - makes this a generator
