"""The delivery engine, one for both guarantees: fetched records are processed concurrently in key
order, published in offset order per partition, and committed over a contiguous prefix.

    fetch (FastStream batch) ─► admit: lanes and key chains ─► workers (at most MAX_IN_FLIGHT)
        ─► publish in offset order ─► commit the acknowledged prefix (the guarantee's strategy)

The guarantee (at_least_once.py, exactly_once.py) decides how outputs are published and how a
prefix is committed, and reaches the engine only through a GuaranteeContext (guarantee.py);
everything else (ordering, backpressure, rewinds, rebalances, shutdown) is this package's.

Two ways to run a record. Workers (tasks, at most MAX_IN_FLIGHT) await the handler: any handler,
an async processor's I/O included. An *eager* engine (an `ImmediateHandler`: the order handler with
a plain processor) calls the handler's `now` for each record that may start at once, inside
`process`: a CPU-bound record costs no coroutine and no task switch. A record that has to wait
after all (a blocking retry's backoff: `Waits`) goes on in a task of its own, holding only its key.
Publishing is synchronous: outputs go into the producer's batches (batches.py) in offset order.
"""

import asyncio
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_delivery.engine.backoff import PartitionBackoff
from kafka_delivery.engine.commits import Committer
from kafka_delivery.engine.failures import Failures
from kafka_delivery.engine.guarantee import EngineContext, Guarantee
from kafka_delivery.engine.lanes import PartitionLane
from kafka_delivery.engine.partitions import Partitions
from kafka_delivery.engine.publishing import Publisher
from kafka_delivery.engine.scheduler import Runner
from kafka_delivery.engine.settings import EngineSettings
from kafka_delivery.handlers.retry import DelayGate
from kafka_delivery.logs import current_record
from kafka_delivery.operations.metrics import Flow, PipelineMetrics
from kafka_delivery.types import InputRecord, RecordHandler, runs_by_partition

# An eager engine processes a fetched batch inside `process` and yields a turn of the event loop
# after this much of it: fetches, hand-overs to the producer and acks run in between.
_EAGER_TURN_S = 0.002


_DEFAULTS = EngineSettings()


def _no_consumer() -> AIOKafkaConsumer | None:
    return None


class DeliveryEngine:
    """Fetched records in, outputs and commits out; see the module docstring. A facade: it admits
    records and wires the helpers that run (scheduler.py), publish (publishing.py),
    commit (commits.py) and recover (failures.py) them, over its partitions (partitions.py)."""

    def __init__(
        self,
        handle: RecordHandler,
        guarantee: Guarantee,
        *,
        metrics: PipelineMetrics,
        settings: EngineSettings = _DEFAULTS,
        gate: DelayGate | None = None,
        consumer: Callable[[], AIOKafkaConsumer | None] = _no_consumer,
    ) -> None:
        self.guarantee = guarantee
        self.metrics = metrics
        self.settings = settings
        self._gate = gate
        self.consumer = consumer
        self._partitions = Partitions(consumer=consumer, metrics=metrics, settings=settings)
        self.committed: dict[TopicPartition, int] = self._partitions.committed
        self.backoff: PartitionBackoff = self._partitions.backoff
        self._failures = Failures(guarantee, self._partitions)
        self._committer = Committer(guarantee, self._partitions, interval_ms=settings.commit_interval_ms)
        self._publisher = Publisher(
            guarantee, self._partitions, self._failures, metrics, self._committer.wake
        )
        self._runner = Runner(
            handle, self._publisher, max_in_flight=settings.max_in_flight, eager=settings.eager
        )
        self._committing: asyncio.Task[None] | None = None
        self._closing = False
        guarantee.attach(
            EngineContext(
                self._partitions,
                self._failures,
                self._publisher,
                metrics=metrics,
                backoff_ms=settings.backoff_ms,
            )
        )

    @property
    def lanes(self) -> dict[TopicPartition, PartitionLane]:
        """The lane of each partition holding records."""
        return self._partitions.lanes

    # --- admission ----------------------------------------------------------------------------

    async def process(self, records: Sequence[InputRecord]) -> None:
        """Admit one fetched batch. An eager engine runs what may start before it returns; otherwise
        this returns once the batch is queued, not processed (see drain)."""
        self._start()
        self.metrics.batch_size.observe(len(records))
        consumer = self.consumer()
        assigned = consumer.assignment() if consumer is not None else None
        now = time.monotonic()
        partitions = self._partitions
        for tp, batch in runs_by_partition(records):
            if self._closing or (assigned is not None and tp not in assigned):
                continue  # not committed: fetched again by whoever owns the partition next
            lane = partitions.lane(tp)
            if lane.closing or lane.failing or not await self.guarantee.accepts(lane):
                continue
            fresh = _fresh(lane, batch, consumer)
            held = None
            if self._gate is not None:
                fresh, held = self._gate.split(fresh)
            if self.settings.eager:
                if not await self._admit_eagerly(lane, fresh, now):
                    continue  # the lane was rewound, revoked or is failing: the rest is fetched again
            else:
                for record in fresh:
                    pending = lane.admit(record, now)
                    if pending.waiting_for == 0:
                        self._runner.scheduler.push(pending)
            if held is not None:
                self._gate.hold(partitions.pauses.view("delay"), held)  # type: ignore[union-attr]
                lane.resync_at(held.offset)
            partitions.limit(lane)
        if self.settings.eager:
            current_record.set(None)  # the caller's own log lines are about no record

    async def _admit_eagerly(self, lane: PartitionLane, records: list[InputRecord], now: float) -> bool:
        """Admit and run `records`, publishing as they finish; False when the lane stopped taking
        records meanwhile (the ones not admitted are fetched again)."""
        turn_ends = time.perf_counter() + _EAGER_TURN_S
        scheduler, run_now, publish = self._runner.scheduler, self._runner.run_now, self._publisher.publish
        for record in records:
            pending = lane.admit(record, now, running=True)
            if pending.waiting_for == 0:
                if scheduler.may_run_now():
                    run_now(pending)
                else:
                    lane.hold(pending)
                    scheduler.push(pending)
            if time.perf_counter() >= turn_ends:
                publish(lane)
                await asyncio.sleep(0)
                if (
                    not self._partitions.owns(lane)
                    or lane.closing
                    or lane.failing
                    or lane.resync_to is not None
                ):
                    return False
                turn_ends = time.perf_counter() + _EAGER_TURN_S
        publish(lane)
        return True

    def _start(self) -> None:
        if self._committing is None:
            self._runner.scheduler.start()
            self._committing = asyncio.create_task(self._committer.run())

    # --- rebalances and shutdown --------------------------------------------------------------

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        self.backoff.assigned(partitions)  # their blocked series, from now on
        await self.guarantee.assigned(partitions)

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Finish, publish and commit the revoked partitions' records within the drain timeout;
        whatever is left then is abandoned, never committed past."""
        await self._committer.drain(
            [tp for tp in partitions if tp in self.lanes], self.settings.drain_timeout_s
        )
        await self.guarantee.revoked(partitions)
        self._partitions.forget(partitions)

    async def drain(self, timeout_s: float) -> None:
        """At shutdown: stop taking records, and commit what was taken, within `timeout_s`."""
        self._closing = True
        self._partitions.stop_fetching()
        await self._committer.drain(list(self.lanes), timeout_s)

    async def close(self) -> None:
        """Stop the workers and the committer, then the guarantee (its producers)."""
        tasks = [
            *self._runner.scheduler.workers,
            *self._runner.tasks,
            *self._failures.tasks,
            *([self._committing] if self._committing is not None else []),
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner.scheduler.workers, self._committing = [], None
        await self.guarantee.close()

    def transactional_ids(self) -> list[str]:
        return self.guarantee.transactional_ids()

    def flow(self) -> Flow:
        return self._partitions.flow(self._runner.scheduler.busy)


def _fresh(
    lane: PartitionLane, records: list[InputRecord], consumer: AIOKafkaConsumer | None
) -> list[InputRecord]:
    """Drop records fetched before a rewind of their partition: processing them would commit past
    the records the rewind is for. Such a batch is fetched again from the rewind's offset."""
    if (target := lane.take_resync()) is not None and records[0].offset != target:
        if consumer is not None and lane.tp in consumer.assignment():
            consumer.seek(lane.tp, target)
        return []
    if lane.next_offset is not None and records[0].offset < lane.next_offset:
        return [r for r in records if r.offset >= lane.next_offset]
    return records
