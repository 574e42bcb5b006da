"""Kafka calls with a bound, shared by every command that talks to Kafka.

A cluster that does not answer in time, or cannot be connected to, raises `KafkaUnreachable`, whose
message is the short cause; `common.run` turns it into the command's one line.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
)

from kafka_delivery.logs import connection_errors

DEFAULT_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0  # to close a client after success
ABANDON_TIMEOUT = 1.0  # after a failure: a producer that cannot reach the cluster would flush forever


class KafkaUnreachable(Exception):
    """Kafka did not answer in time, or could not be connected to; the message is the short cause."""


class CommandFailed(Exception):
    """An expected failure, such as a missing topic; the message is the line to print."""


def deadline(timeout: float) -> float:
    """The event-loop time `timeout` seconds from now, for `bounded` and `connect`."""
    return asyncio.get_running_loop().time() + timeout


@asynccontextmanager
async def bounded(doing: str, until: float) -> AsyncIterator[None]:
    """Kafka calls that must be done by `until` (event-loop time).

    A cluster that does not answer by then, or cannot be connected to, raises `KafkaUnreachable`.
    """
    try:
        async with asyncio.timeout_at(until):
            yield
    except (TimeoutError, KafkaTimeoutError, RequestTimedOutError):
        known = connection_errors.summary()
        raise KafkaUnreachable(f"no answer while {doing}" + (f" ({known})" if known else "")) from None
    except (KafkaConnectionError, NoBrokersAvailable, NodeNotReadyError) as exc:
        raise KafkaUnreachable(connection_errors.summary() or f"{doing}: {exc}") from None


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
    stop = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
    try:
        async with asyncio.timeout(timeout):
            await stop()
    except (TimeoutError, KafkaError) as exc:
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


async def require_topic(kafka_client: Any, topic: str, until: float) -> set[int]:
    """The partitions of `topic`, from the cluster's metadata; `CommandFailed` if it does not exist.

    `kafka_client` is the AIOKafkaClient inside a producer (`.client`) or consumer (`._client`).
    """
    async with bounded("fetching metadata", until):
        try:
            metadata = await kafka_client.fetch_all_metadata()
        except KafkaConnectionError:
            raise
        except KafkaError as exc:  # "Unable to get cluster metadata over all known brokers"
            raise KafkaConnectionError(str(exc)) from None
    partitions: set[int] | None = metadata.partitions_for_topic(topic)
    if partitions is None:
        raise CommandFailed(f"topic {topic} does not exist")
    return partitions
