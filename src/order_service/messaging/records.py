"""The records the delivery layer consumes and produces."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

if TYPE_CHECKING:
    from order_service.messaging.backoff import PartitionBackoff

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
    """How fetched batches become outputs and commits: the delivery engine, as its users see it."""

    consumer: "Callable[[], AIOKafkaConsumer | None]"
    committed: dict[TopicPartition, int]
    backoff: "PartitionBackoff"

    def rebalance_listener(self) -> ConsumerRebalanceListener: ...

    def transactional_ids(self) -> list[str]: ...

    async def process(self, records: Sequence[InputRecord]) -> None: ...

    async def drain(self, timeout_s: float) -> None: ...

    async def close(self) -> None: ...
