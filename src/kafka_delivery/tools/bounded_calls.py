"""Kafka calls with a bound, for every tool that talks to Kafka: the CLI, verify, the tests, the bench.

A cluster that does not answer in time, or cannot be connected to, raises `KafkaUnreachable`
(`CannotConnect` when no broker could be connected to), whose message is the short cause, with why
each broker failed when aiokafka logged it (`kafka_delivery.logs.tame_aiokafka`).
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
)

from kafka_delivery.errors import CannotConnect, KafkaUnreachable
from kafka_delivery.logs import connection_errors

DEFAULT_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0  # to close a client after success
ABANDON_TIMEOUT = 1.0  # after a failure: a producer that cannot reach the cluster would flush forever

T = TypeVar("T")


def deadline(timeout: float) -> float:
    """The event-loop time `timeout` seconds from now, for `bounded` and `connect`."""
    return asyncio.get_running_loop().time() + timeout


@asynccontextmanager
async def bounded(doing: str, until: float) -> AsyncIterator[None]:
    """Kafka calls that must be done by `until` (event-loop time).

    A cluster that does not answer by then raises `KafkaUnreachable`, one that cannot be connected
    to `CannotConnect`; other Kafka errors pass.
    """
    began = time.monotonic()
    try:
        async with asyncio.timeout_at(until):
            yield
    except (TimeoutError, KafkaTimeoutError, RequestTimedOutError):
        known = connection_errors.summary(since=began)
        raise KafkaUnreachable(f"no answer while {doing}" + (f" ({known})" if known else "")) from None
    except (KafkaConnectionError, NoBrokersAvailable, NodeNotReadyError) as exc:
        raise CannotConnect(connection_errors.summary(since=began) or f"{doing}: {exc}") from None


async def within(call: Awaitable[T], timeout: float, doing: str = "waiting") -> T:
    """`await call`, done within `timeout` seconds (see `bounded`)."""
    async with bounded(doing, deadline(timeout)):
        return await call


async def connect(client: Any, until: float) -> None:
    """Start an aiokafka client by `until`; when that fails, close it again and raise."""
    try:
        async with bounded("connecting", until):
            await client.start()
    except BaseException:
        await close(client, ABANDON_TIMEOUT)
        raise


async def close(client: Any, timeout: float = CLOSE_TIMEOUT) -> None:
    """Stop a client, giving up after `timeout` seconds (a producer would flush what it holds first)."""
    stop = client.close if isinstance(client, AIOKafkaAdminClient | AIOKafkaClient) else client.stop
    try:
        async with asyncio.timeout(timeout):
            await stop()
    except (TimeoutError, KafkaError, OSError) as exc:
        logging.getLogger(__name__).debug("closing %s failed: %r", type(client).__name__, exc)


@asynccontextmanager
async def closing(client: Any) -> AsyncIterator[None]:
    """Close a started client (or none) after the block; after a failure, give it little time."""
    try:
        yield
    except BaseException:
        if client is not None:
            await close(client, ABANDON_TIMEOUT)
        raise
    if client is not None:
        await close(client)


async def stalled(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int], timeout: float
) -> KafkaUnreachable:
    """The error for reading that made no progress for `timeout` seconds, naming where it is stuck."""
    stuck = sorted([tp for tp, end in ends.items() if await consumer.position(tp) < end])
    more = f" and {len(stuck) - 5} more" if len(stuck) > 5 else ""
    names = ", ".join(f"{tp.topic}/{tp.partition}" for tp in stuck[:5])
    known = connection_errors.summary(since=time.monotonic() - timeout)
    return KafkaUnreachable(
        f"no progress reading {names}{more} for {timeout:g}s" + (f" ({known})" if known else "")
    )
