"""Kafka calls of the chaos harness, each bounded: a broker that is dead or frozen (SIGSTOP) must
cost a sample or a retry, never a hang. Shared by the progress sampler, the metadata look-ups, the
paced producer and the fallback reconciliation."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

CALL_TIMEOUT_S = 5.0

T = TypeVar("T")


def hosts(bootstrap: str) -> list[str]:
    return [h.strip() for h in bootstrap.split(",") if h.strip()]


async def bounded(call: Awaitable[T], seconds: float = CALL_TIMEOUT_S) -> T:
    async with asyncio.timeout(seconds):
        return await call


async def retrying(
    call: Callable[[], Awaitable[T]], *, what: str, timeout: float, interval: float = 1.0
) -> T:
    """`call()` until it succeeds (each try bounded); the last error once `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await bounded(call())
        except (KafkaError, OSError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: no success within {timeout:.0f}s, last error {exc!r}") from exc
        await asyncio.sleep(interval)


async def close_quietly(client: Any) -> None:
    stop = client.close if isinstance(client, AIOKafkaAdminClient | AIOKafkaClient) else client.stop
    with contextlib.suppress(Exception):
        await bounded(stop())
