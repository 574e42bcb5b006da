"""The records the delivery layer consumes and produces."""

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from aiokafka import ConsumerRecord, TopicPartition

Headers = list[tuple[str, bytes]]


@dataclass(slots=True)
class OutgoingRecord:
    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers = field(default_factory=list)


# aiokafka ships no type information, so its records are untyped here.
InputRecord: TypeAlias = ConsumerRecord
RecordHandler = Callable[[InputRecord], Coroutine[Any, Any, Sequence[OutgoingRecord]]]


class ImmediateHandler(Protocol):
    """A record handler that can also handle a record in the caller, without a coroutine: what an
    eager engine runs (engine.py). Its `now` and its coroutine give the same outputs."""

    def __call__(self, record: InputRecord) -> Coroutine[Any, Any, Sequence[OutgoingRecord]]: ...

    def now(self, record: InputRecord) -> Sequence[OutgoingRecord]:
        """The record's outputs, made now; raises `Waits` when the record has to wait for something."""
        ...


class Waits(Exception):
    """Raised by a handler's `now` when the record has to wait (a blocking retry's backoff): awaiting
    `rest` finishes it, from where `now` left off."""

    def __init__(self, rest: Coroutine[Any, Any, Sequence[OutgoingRecord]]) -> None:
        super().__init__("the record goes on in a task")
        self.rest = rest


class RecordSink(Protocol):
    def send(self, record: OutgoingRecord) -> "asyncio.Future[Any]":
        """Hand a record to the producer now; the future resolves once the broker acks it."""
        ...


def runs_by_partition(records: Sequence[InputRecord]) -> Iterator[tuple[TopicPartition, list[InputRecord]]]:
    """The records of each partition in offset order as fetched; a fetch lists them partition by
    partition, so this takes runs of one partition rather than a dict lookup per record."""
    start = 0
    while start < len(records):
        first = records[start]
        topic, partition = first.topic, first.partition
        end = start + 1
        while end < len(records) and records[end].partition == partition and records[end].topic == topic:
            end += 1
        yield TopicPartition(topic, partition), list(records[start:end])
        start = end
