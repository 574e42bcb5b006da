"""Reading partitions over offset ranges, every Kafka call bounded: `scan`, and `CannotRead`.

A scan hands each partition's records in `[start, end)` to its topic's handler, in log order, with
kafka_io's `read_to_end`; what cannot be read raises `CannotRead`, whose message is the one line to
show.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from kafka_delivery.tools.reading import read_to_end


class CannotRead(Exception):
    """The topics could not be read (unreachable cluster, missing topic, no progress): the message is
    the one line to show."""


class CannotConnect(CannotRead):
    """No broker could be connected to."""


Progress = Callable[[int, int], None]  # offsets read so far, offsets to read


@contextmanager
def failing(doing: str) -> Iterator[None]:
    """Kafka errors as `CannotRead`, saying what was being done."""
    try:
        yield
    except KafkaConnectionError as exc:
        raise CannotConnect(f"cannot connect while {doing}: {exc}") from None
    except KafkaError as exc:  # e.g. KafkaTimeoutError, or metadata that no broker gave
        raise CannotRead(f"failed while {doing}: {exc!r}") from None


@asynccontextmanager
async def bounded(doing: str, timeout: float) -> AsyncIterator[None]:
    """Kafka calls that must be done within `timeout` seconds, or `CannotRead` says what hung."""
    try:
        async with asyncio.timeout(timeout):
            with failing(doing):
                yield
    except TimeoutError:
        raise CannotRead(f"no answer within {timeout:g}s while {doing}") from None


async def scan(
    consumer: AIOKafkaConsumer,
    bounds: Mapping[TopicPartition, tuple[int, int]],
    handlers: Mapping[str, Callable[[Any], None]],
    timeout: float,
    progress: Progress | None,
) -> None:
    """Hand the records of each partition in `[start, end)` to its topic's handler, in log order.

    `CannotRead` when no partition moved for `timeout` seconds (kafka_io.read_to_end).
    """
    total = sum(end - start for start, end in bounds.values())
    ends = {tp: end for tp, (start, end) in bounds.items() if start < end}
    reached = {tp: start for tp, (start, _) in bounds.items()}
    for tp in ends:
        consumer.seek(tp, bounds[tp][0])
    if idle := [tp for tp in bounds if tp not in ends]:
        consumer.pause(*idle)
    done = 0
    if progress is not None:
        progress(done, total)
    try:
        with failing("fetching records"):
            async for records in read_to_end(consumer, ends, stall_timeout_s=timeout):
                if not records:
                    continue
                handle = handlers[records[0].topic]
                for record in records:
                    handle(record)
                # Positions, not records, tell how far a partition is: transaction markers and
                # aborted records take offsets that no record is returned for.
                tp = TopicPartition(records[0].topic, records[0].partition)
                position = min(await consumer.position(tp), ends[tp])
                done += position - reached[tp]
                reached[tp] = position
                if position >= ends[tp]:
                    consumer.pause(tp)  # read_to_end no longer asks for it; nor should the fetcher
                if progress is not None:
                    progress(done, total)
    except TimeoutError:
        stuck = sorted([tp for tp, end in ends.items() if await consumer.position(tp) < end])
        more = f" and {len(stuck) - 5} more" if len(stuck) > 5 else ""
        names = ", ".join(f"{tp.topic}/{tp.partition}" for tp in stuck[:5])
        raise CannotRead(f"no progress reading {names}{more} for {timeout:g}s") from None
    if progress is not None:
        progress(total, total)
