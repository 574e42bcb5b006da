"""The records the delivery layer consumes and produces."""

from collections.abc import Awaitable, Callable, Sequence
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
RecordHandler = Callable[[InputRecord], Awaitable[Sequence[OutgoingRecord]]]


class RecordSink(Protocol):
    async def send(self, record: OutgoingRecord) -> "Awaitable[Any]":
        """Hand a record to the producer; the returned awaitable resolves once the broker acks it."""
        ...


def partition_of(record: InputRecord) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def group_by_partition(records: Sequence[InputRecord]) -> dict[TopicPartition, list[InputRecord]]:
    """Records per partition, each list in offset order as fetched."""
    grouped: dict[TopicPartition, list[InputRecord]] = {}
    for record in records:
        grouped.setdefault(partition_of(record), []).append(record)
    return grouped


class DeliveryPipeline(Protocol):
    """How fetched batches become outputs and commits; one per delivery guarantee."""

    consumer: "Callable[[], Any]"
    committed: dict[Any, int]
    backoff: Any

    def rebalance_listener(self) -> Any: ...

    def transactional_ids(self) -> list[str]: ...

    async def process(self, records: Sequence[InputRecord]) -> None: ...

    async def close(self) -> None: ...
