"""Kafka calls of the chaos harness, each bounded: a broker that is dead or frozen (SIGSTOP) must
cost a sample or a retry, never a hang. Shared by the progress sampler, the metadata look-ups, the
paced producer and the fallback reconciliation. The bound itself is the library's toolkit
(kafka_delivery.tools: `within`, `close`); what is chaos's own is the retry policy."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

from kafka_delivery.errors import KafkaUnreachable
from kafka_delivery.tools import within

CALL_TIMEOUT_S = 5.0
# What a retry is for: Kafka's errors, the network's, and a call that took longer than its bound.
TRANSIENT = (KafkaError, OSError, TimeoutError, KafkaUnreachable)

T = TypeVar("T")


def hosts(bootstrap: str) -> list[str]:
    return [h.strip() for h in bootstrap.split(",") if h.strip()]


async def retrying(
    call: Callable[[], Awaitable[T]], *, what: str, timeout: float, interval: float = 1.0
) -> T:
    """`call()` until it succeeds (each try bounded); the last error once `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await within(call(), CALL_TIMEOUT_S)
        except TRANSIENT as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: no success within {timeout:.0f}s, last error {exc!r}") from exc
        await asyncio.sleep(interval)
