"""What a guarantee is to the engine (`Guarantee`), and what the engine is to a guarantee
(`GuaranteeContext`, implemented by `EngineContext`): the only operations a guarantee may ask of
the engine that runs it."""

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_delivery.engine.lanes import PartitionLane
from kafka_delivery.operations.metrics import PipelineMetrics
from kafka_delivery.types import OutgoingRecord

if TYPE_CHECKING:  # they take a Guarantee themselves
    from kafka_delivery.engine.failures import Failures
    from kafka_delivery.engine.partitions import Partitions
    from kafka_delivery.engine.publishing import Publisher


class GroupMovedOn(Exception):
    """The group has a generation this member is not in (it was expelled, or a rebalance is under
    way): its offset commits are refused until it has joined again, and the partitions being drained
    are someone else's by then. A guarantee raises it from a forced commit, so that the drain stops
    at once instead of retrying until its timeout (make chaos scenario 10: a 30 s blackhole to the
    group coordinator expelled both instances, and each revoke then retried a refused commit every
    0.5 s for the whole 10 s drain, 34 warnings, before the rejoin could go on)."""


class GuaranteeContext(Protocol):
    """The engine's partitions as a guarantee sees them: their lanes and consumer, what to do when
    one fails, is committed or must be fetched again, and the metrics it counts into."""

    @property
    def metrics(self) -> PipelineMetrics: ...

    @property
    def backoff_ms(self) -> int:
        """The first backoff of a partition after a failure (a failed offset commit waits as long)."""
        ...

    def consumer(self) -> AIOKafkaConsumer | None:
        """The consumer of the moment (None before it starts)."""
        ...

    def lane(self, tp: TopicPartition) -> PartitionLane:
        """The partition's lane, made if it has none yet."""
        ...

    def current(self, tp: TopicPartition) -> PartitionLane | None:
        """The partition's lane now, if it has one (another than before, after a rebalance)."""
        ...

    def owns(self, lane: PartitionLane) -> bool:
        """Whether `lane` is still its partition's: not revoked (or replaced) meanwhile."""
        ...

    async def fail(self, lane: PartitionLane, offset: int, exc: BaseException, what: str) -> None:
        """A publish or commit failed at `offset`: forget the records from there, recover, rewind."""
        ...

    def commit_done(self, lane: PartitionLane, offset: int) -> None:
        """The guarantee committed `lane` up to `offset`."""
        ...

    def note_committed(self, tp: TopicPartition, offset: int) -> None:
        """The group's committed offset of `tp`, as the guarantee read it (lag, stalls, readiness)."""
        ...

    def publish_now(self, lane: PartitionLane) -> None:
        """Publish what of `lane` finished while it could not be published (a transaction commit)."""
        ...

    def rewind(self, lane: PartitionLane, target: int) -> None:
        """Fetch the partition again from `target`, at once."""
        ...

    def back_off(self, tp: TopicPartition, offset: int, exc: BaseException) -> None:
        """Fetch the partition again from `offset` once a growing backoff ends."""
        ...


class Guarantee(Protocol):
    """How outputs are published and a partition's finished prefix committed."""

    # Whether a failure loses every uncommitted record of the partition (an aborted transaction).
    drops_all_on_failure: bool
    # Whether an output the broker refused stops its partition at once, before it publishes more
    # (at-least-once: nothing after it may reach the log before it is published again). Otherwise
    # the commit finds it (exactly-once: the transaction is aborted, nothing of it is seen).
    stops_at_refused_output: bool

    def attach(self, context: GuaranteeContext) -> None:
        """Called once, by the engine that runs the guarantee, before anything else."""
        ...

    async def accepts(self, lane: PartitionLane) -> bool:
        """Whether the partition may take records now (exactly-once: it has its producer)."""
        ...

    def publish(
        self, lane: PartitionLane, outputs: Sequence[OutgoingRecord]
    ) -> "Sequence[asyncio.Future[Any]]":
        """Hand the outputs to the producer now; each future resolves when the broker acks it."""
        ...

    async def commit(self, lanes: Sequence[PartitionLane], *, force: bool) -> None:
        """Commit what is ready in each lane; lanes that are closing are committed now."""
        ...

    async def recover(self, lane: PartitionLane, offset: int, exc: BaseException) -> int | None:
        """After a failure at `offset`: the offset to fetch the partition again from, or None."""
        ...

    async def assigned(self, partitions: set[TopicPartition]) -> None: ...

    async def revoked(self, partitions: set[TopicPartition]) -> None: ...

    def transactional_ids(self) -> list[str]: ...

    async def close(self) -> None: ...


class EngineContext:
    """The engine's side of `GuaranteeContext`: each operation a guarantee may ask for, taken from
    the helper that does it. The guarantee gets this, never the engine."""

    def __init__(
        self,
        partitions: "Partitions",
        failures: "Failures",
        publisher: "Publisher",
        *,
        metrics: PipelineMetrics,
        backoff_ms: int,
    ) -> None:
        self.metrics = metrics
        self.backoff_ms = backoff_ms
        self.consumer = partitions.consumer
        self.lane = partitions.lane
        self.current = partitions.current
        self.owns = partitions.owns
        self.fail = failures.fail
        self.commit_done = partitions.commit_done
        self.note_committed = partitions.note_committed
        self.publish_now = publisher.publish
        self.rewind = partitions.rewind
        self.back_off = partitions.back_off
