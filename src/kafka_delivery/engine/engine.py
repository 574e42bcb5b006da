"""The delivery engine, one for both guarantees: fetched records are processed concurrently in key
order, published in offset order per partition, and committed over a contiguous prefix.

    fetch (FastStream batch) ─► admit: lanes and key chains ─► workers (at most MAX_IN_FLIGHT)
        ─► publish in offset order ─► commit the acknowledged prefix (the guarantee's strategy)

The guarantee (at_least_once.py, exactly_once.py) decides how outputs are published and how a
prefix is committed; everything else (ordering, backpressure, rewinds, rebalances, shutdown) is here.

Two ways to run a record. Workers (tasks, at most MAX_IN_FLIGHT) await the handler: any handler,
an async processor's I/O included. An *eager* engine (an `ImmediateHandler`: the order handler with
a plain processor) calls the handler's `now` for each record that may start at once, inside
`process`: a CPU-bound record costs no coroutine and no task switch. A record that has to wait
after all (a blocking retry's backoff: `Waits`) goes on in a task of its own, holding only its key.
Publishing is synchronous: outputs go into the producer's batches (batches.py) in offset order.
"""

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from kafka_delivery.engine.backoff import PartitionBackoff, refusal
from kafka_delivery.engine.lanes import Ordering, PartitionLane, Pending, ack_error
from kafka_delivery.engine.pauses import Pauses
from kafka_delivery.engine.rebalance import RebalanceCallbacks
from kafka_delivery.engine.scheduler import Scheduler
from kafka_delivery.handlers.retry import DelayGate
from kafka_delivery.logs import current_record
from kafka_delivery.operations.metrics import Flow, PartitionFlow, PipelineMetrics
from kafka_delivery.types import (
    InputRecord,
    OutgoingRecord,
    RecordHandler,
    Waits,
    runs_by_partition,
)

logger = logging.getLogger(__name__)
# An eager engine processes a fetched batch inside `process` and yields a turn of the event loop
# after this much of it: fetches, hand-overs to the producer and acks run in between.
_EAGER_TURN_S = 0.002


def _no_consumer() -> AIOKafkaConsumer | None:
    return None


@dataclass(frozen=True, slots=True)
class EngineSettings:
    ordering: Ordering = "key"
    # Records being processed at once (the workers); records waiting for their key do not count.
    max_in_flight: int = 1_000
    # A partition holding this many records between fetch and commit stops fetching until it drains.
    max_buffered: int = 2_000
    # How long a revocation waits for the revoked partitions' records to be committed.
    drain_timeout_s: float = 10.0
    # First backoff of a partition after a failed publish or commit; doubles up to the ceiling.
    backoff_ms: int = 500
    max_backoff_ms: int = 30_000
    # How often the committer runs when nothing wakes it (exactly-once commits at this interval).
    commit_interval_ms: int = 100
    # Run records inside `process` with the handler's `now` (an ImmediateHandler; see the module docstring).
    eager: bool = False


class Guarantee(Protocol):
    """How outputs are published and a partition's finished prefix committed."""

    # Whether a failure loses every uncommitted record of the partition (an aborted transaction).
    drops_all_on_failure: bool
    # Whether an output the broker refused stops its partition at once, before it publishes more
    # (at-least-once: nothing after it may reach the log before it is published again). Otherwise
    # the commit finds it (exactly-once: the transaction is aborted, nothing of it is seen).
    stops_at_refused_output: bool

    def bind(self, engine: "DeliveryEngine") -> None: ...

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


class BoundToEngine:
    """A guarantee's link back to the engine that runs it, set once by the engine (`bind`)."""

    _engine: "DeliveryEngine | None" = None

    def bind(self, engine: "DeliveryEngine") -> None:
        self._engine = engine

    @property
    def engine(self) -> "DeliveryEngine":
        assert self._engine is not None, "bound to an engine at construction"
        return self._engine


class DeliveryEngine:
    """Fetched records in, outputs and commits out; see the module docstring."""

    def __init__(
        self,
        handle: RecordHandler,
        guarantee: Guarantee,
        *,
        metrics: PipelineMetrics,
        settings: EngineSettings = EngineSettings(),
        gate: DelayGate | None = None,
        consumer: Callable[[], AIOKafkaConsumer | None] = _no_consumer,
    ) -> None:
        self._handle = handle
        self._now: Callable[[InputRecord], Sequence[OutgoingRecord]] | None = None
        if settings.eager:
            self._now = getattr(handle, "now", None)
            if self._now is None:
                raise ValueError("an eager engine needs a handler with `now` (an ImmediateHandler)")
        self.guarantee = guarantee
        self.metrics = metrics
        self.settings = settings
        self._gate = gate
        self.consumer = consumer
        self.pauses = Pauses(lambda: self.consumer())
        self.backoff = PartitionBackoff(
            metrics=metrics, base_ms=settings.backoff_ms, max_ms=settings.max_backoff_ms
        )
        # The last offset committed per partition (lag, stalls, readiness).
        self.committed: dict[TopicPartition, int] = {}
        self.lanes: dict[TopicPartition, PartitionLane] = {}
        self._scheduler = Scheduler(self._run, max_in_flight=settings.max_in_flight)
        self._committer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Records run eagerly that wait in tasks of their own, and recoveries from failed publishes.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        guarantee.bind(self)

    # --- admission ----------------------------------------------------------------------------

    async def process(self, records: Sequence[InputRecord]) -> None:
        """Admit one fetched batch. An eager engine runs what may start before it returns; otherwise
        this returns once the batch is queued, not processed (see drain)."""
        self._start()
        self.metrics.batch_size.observe(len(records))
        consumer = self.consumer()
        assigned = consumer.assignment() if consumer is not None else None
        now = time.monotonic()
        for tp, batch in runs_by_partition(records):
            if self._closing or (assigned is not None and tp not in assigned):
                continue  # not committed: fetched again by whoever owns the partition next
            lane = self.lane(tp)
            if lane.closing or lane.failing or not await self.guarantee.accepts(lane):
                continue
            fresh = self._fresh(lane, batch, consumer)
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
                        self._scheduler.push(pending)
            if held is not None:
                self._gate.hold(self.pauses.view("delay"), held)  # type: ignore[union-attr]
                lane.resync_at(held.offset)
            self._limit(lane)
        if self.settings.eager:
            current_record.set(None)  # the caller's own log lines are about no record

    async def _admit_eagerly(self, lane: PartitionLane, records: list[InputRecord], now: float) -> bool:
        """Admit and run `records`, publishing as they finish; False when the lane stopped taking
        records meanwhile (the ones not admitted are fetched again)."""
        turn_ends = time.perf_counter() + _EAGER_TURN_S
        for record in records:
            pending = lane.admit(record, now, running=True)
            if pending.waiting_for == 0:
                if self._scheduler.may_run_now():
                    self._run_now(pending)
                else:
                    lane.hold(pending)
                    self._scheduler.push(pending)
            if time.perf_counter() >= turn_ends:
                self._publish(lane)
                await asyncio.sleep(0)
                if not self.owns(lane) or lane.closing or lane.failing or lane.resync_to is not None:
                    return False
                turn_ends = time.perf_counter() + _EAGER_TURN_S
        self._publish(lane)
        return True

    def lane(self, tp: TopicPartition) -> PartitionLane:
        lane = self.lanes.get(tp)
        if lane is None:
            lane = self.lanes[tp] = PartitionLane(tp, self.settings.ordering)
        return lane

    def _fresh(
        self, lane: PartitionLane, records: list[InputRecord], consumer: AIOKafkaConsumer | None
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

    def _limit(self, lane: PartitionLane) -> None:
        """Backpressure: a partition with a full buffer, or all of them past the instance's bound,
        stop fetching until their records are committed."""
        if len(lane) >= self.settings.max_buffered:
            self.pauses.pause(lane.tp, "full")
        if self.buffered() >= self._instance_bound():
            for tp in self.lanes:
                self.pauses.pause(tp, "full")

    def _relieve(self) -> None:
        paused = self.pauses.paused_for("full")
        if not paused or self.buffered() > self._instance_bound() * 3 // 4:
            return
        for tp in paused:
            lane = self.lanes.get(tp)
            if lane is None or len(lane) <= self.settings.max_buffered * 3 // 4:
                self.pauses.resume(tp, "full")

    def owns(self, lane: PartitionLane) -> bool:
        """Whether `lane` is still its partition's: not revoked (or replaced) meanwhile."""
        return self.lanes.get(lane.tp) is lane

    def _instance_bound(self) -> int:
        return 4 * max(self.settings.max_in_flight, self.settings.max_buffered)

    def buffered(self) -> int:
        return sum(len(lane) for lane in self.lanes.values())

    # --- processing and publishing ------------------------------------------------------------

    def _start(self) -> None:
        if self._committer is None:
            self._scheduler.start()
            self._committer = asyncio.create_task(self._commit_loop())

    async def _run(self, pending: Pending) -> Pending | None:
        """Process, finish and publish `pending` (a worker's); returns a record it made ready, to run next."""
        if not pending.dropped:
            current_record.set(pending.record)
            try:
                pending.outputs = await self._handle(pending.record)
            except Exception as exc:  # noqa: BLE001 - the handler routes failures; this is a defect
                pending.error = exc
        ready = self._finish(pending)
        for other in ready[1:]:
            self._scheduler.push(other)
        return ready[0] if ready else None

    def _run_now(self, pending: Pending) -> None:
        """Run `pending` in the caller with the handler's `now`; if it has to wait, in a task from there."""
        current_record.set(pending.record)
        try:
            pending.outputs = self._now(pending.record)  # type: ignore[misc]
        except Waits as waits:
            pending.lane.hold(pending)  # later records of its key wait for it now
            self._scheduler.went_off()
            task = asyncio.get_running_loop().create_task(waits.rest)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(functools.partial(self._went_on, pending))
            return
        except Exception as exc:  # noqa: BLE001 - the handler routes failures; this is a defect
            pending.error = exc
        for ready in self._finish(pending, publish=False):  # published after its batch (or turn)
            self._scheduler.push(ready)

    def _went_on(self, pending: Pending, task: "asyncio.Task[Sequence[OutgoingRecord]]") -> None:
        """A record run eagerly finished in its task."""
        self._scheduler.came_back()
        if task.cancelled():  # the engine is closing: nothing of it is published any more
            self._finish(pending, publish=False)
            return
        if (exc := task.exception()) is not None:
            pending.error = exc
        else:
            pending.outputs = task.result()
        for ready in self._finish(pending):
            self._scheduler.push(ready)
        self._scheduler.wake_if_ready()  # a worker may take a record now that this one is done

    def _finish(self, pending: Pending, *, publish: bool = True) -> list[Pending]:
        """Mark `pending` processed and publish what it lets through; returns the records it was the
        last predecessor of, which may start now."""
        ready = pending.lane.finish(pending)
        if publish and not pending.dropped:
            self._publish(pending.lane)
        return ready

    def _publish(self, lane: PartitionLane) -> None:
        """Publish the processed head of the lane, and every processed record after it, in order."""
        if lane.failing or lane.lock.locked() or not self.owns(lane):
            # Failing: the recovery fetches it again. Locked: a transaction commits; its end
            # publishes what finished meanwhile. Revoked: nothing of it is published any more.
            return
        watched: set[asyncio.Future[Any]] = set()
        acked = functools.partial(self._acked, lane)
        while (pending := lane.publishable()) is not None:
            try:
                if pending.error is not None:
                    raise pending.error
                acks = self.guarantee.publish(lane, pending.outputs)
            except Exception as exc:  # noqa: BLE001 - the partition backs off and retries it
                self.metrics.publish_failures.inc()
                if self._failing(lane, pending.offset, exc, "could not hand record %s@%s to the producer"):
                    self._spawn(self._recover(lane, pending.offset, exc))
                return
            for ack in acks:
                if ack not in watched:
                    watched.add(ack)
                    ack.add_done_callback(acked)
            lane.published(pending, acks)

    def _acked(self, lane: PartitionLane, ack: "asyncio.Future[Any]") -> None:
        error = ack_error(ack)  # read here: the acks of dropped records are never awaited
        if error is not None and self.guarantee.stops_at_refused_output and not lane.failing:
            self._refused(lane, ack, error)
        self._wake.set()

    def _refused(self, lane: PartitionLane, ack: "asyncio.Future[Any]", error: BaseException) -> None:
        """Stop `lane` at its first record that `ack` was for, before it publishes anything more; it
        is fetched again from there (batches.py keeps the partition's later batches from the log)."""
        pending = next((s for s in lane.unacked if ack in s.acks and not s.dropped), None)
        if pending is None:
            return  # committed or dropped meanwhile
        self.metrics.publish_failures.inc()
        if self._failing(lane, pending.offset, error, "output of %s@%s was not acknowledged"):
            self._spawn(self._recover(lane, pending.offset, error))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("recovery of a partition failed unexpectedly: %r", exc, exc_info=exc)

    # --- commits --------------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        """A commit round when acknowledgements arrive, at most one per commit interval: a commit
        costs a round trip to the group coordinator and the CPU to make it, whatever it covers."""
        interval = self.settings.commit_interval_ms / 1000
        last = -interval
        while True:
            try:
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if (wait := last + interval - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            last = time.monotonic()
            try:
                await self.guarantee.commit(self._committable(self.lanes.values()), force=False)
            except Exception:
                logger.exception("commit round failed; retrying at the next one")
            self._relieve()

    @staticmethod
    def _committable(lanes: "Iterable[PartitionLane]") -> list[PartitionLane]:
        """Lanes that may commit now: not while a failure is being recovered from."""
        return [lane for lane in lanes if not lane.failing]

    def commit_done(self, lane: PartitionLane, offset: int) -> None:
        """The guarantee committed `lane` up to `offset`."""
        gone = lane.committed_through(offset)
        self.committed[lane.tp] = offset
        self.backoff.succeeded(lane.tp, offset)
        now_ms = time.time() * 1000
        observe = self.metrics.end_to_end.observe
        for pending in gone:
            observe(max(0.0, now_ms - pending.record.timestamp) / 1000)

    # --- failures -------------------------------------------------------------------------------

    async def fail(self, lane: PartitionLane, offset: int, exc: BaseException, what: str) -> None:
        """A record's output was not published or acknowledged, or a commit failed: forget the
        records from there on (all uncommitted ones, for an aborted transaction), let the guarantee
        recover, and fetch the partition again from where it says, after a backoff."""
        if self._failing(lane, offset, exc, what):
            await self._recover(lane, offset, exc)

    def _failing(self, lane: PartitionLane, offset: int, exc: BaseException, what: str) -> bool:
        """The part of `fail` that cannot wait: whether the lane is to recover."""
        if not self.owns(lane):
            # Revoked meanwhile: a commit or a send that outlived its partition's drain. Its records
            # were abandoned, and the partition is its new owner's. Recovering would seek or pause
            # it, and in exactly-once re-create its producer: that fences the new owner's.
            logger.debug(what + " after its partition was revoked: %r", lane.tp, offset, exc)
            return False
        level = logging.DEBUG if refusal(exc) else logging.WARNING
        logger.log(level, what + "; it will be retried: %r", lane.tp, offset, exc)
        lane.fail(None if self.guarantee.drops_all_on_failure else offset)
        return True

    async def _recover(self, lane: PartitionLane, offset: int, exc: BaseException) -> None:
        try:
            target = await self.guarantee.recover(lane, offset, exc)
        finally:
            lane.recovered()
        if target is not None:
            self.rewind(lane, target, exc)

    def rewind(self, lane: PartitionLane, target: int, cause: BaseException | None = None) -> None:
        """Fetch the partition again from `target`; after a failure, only once its backoff ends."""
        consumer = self.consumer()
        if consumer is None or lane.tp not in consumer.assignment():
            return
        lane.rewind(target)
        if cause is None:
            consumer.seek(lane.tp, target)
        else:
            self.backoff.failed(self.pauses.view("backoff"), lane.tp, target, cause)

    # --- rebalances and shutdown --------------------------------------------------------------

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        return RebalanceCallbacks(on_assigned=self.assigned, on_revoked=self.revoked)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        await self.guarantee.assigned(partitions)

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Finish, publish and commit the revoked partitions' records within the drain timeout;
        whatever is left then is abandoned, never committed past."""
        await self._drain([tp for tp in partitions if tp in self.lanes], self.settings.drain_timeout_s)
        await self.guarantee.revoked(partitions)
        self.backoff.forget(partitions)
        self.pauses.forget(partitions)

    async def drain(self, timeout_s: float) -> None:
        """At shutdown: stop taking records, and commit what was taken, within `timeout_s`."""
        self._closing = True
        for tp in self.lanes:
            self.pauses.pause(tp, "closing")
        await self._drain(list(self.lanes), timeout_s)

    async def _drain(self, partitions: list[TopicPartition], timeout_s: float) -> None:
        lanes = [self.lanes[tp] for tp in partitions]
        for lane in lanes:
            lane.close()
        try:
            async with asyncio.timeout(timeout_s):
                while any(len(lane) for lane in lanes):
                    await self.guarantee.commit(self._committable(lanes), force=True)
                    if any(len(lane) for lane in lanes):
                        self._wake.clear()
                        try:
                            async with asyncio.timeout(self.settings.commit_interval_ms / 1000):
                                await self._wake.wait()
                        except TimeoutError:
                            pass
        except TimeoutError:
            left = sum(len(lane) for lane in lanes)
            logger.warning(
                "abandoning %d uncommitted records of %d partitions after %.0fs; they are processed again",
                left,
                len(lanes),
                timeout_s,
            )
        finally:
            for lane in lanes:
                lane.drop_from(None)
                self.lanes.pop(lane.tp, None)

    async def close(self) -> None:
        """Stop the workers and the committer, then the guarantee (its producers)."""
        tasks = [
            *self._scheduler.workers,
            *self._tasks,
            *([self._committer] if self._committer is not None else []),
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._scheduler.workers, self._committer = [], None
        await self.guarantee.close()

    def transactional_ids(self) -> list[str]:
        return self.guarantee.transactional_ids()

    def publish_now(self, lane: PartitionLane) -> None:
        """Publish what of `lane` finished while it could not be published (a transaction commit)."""
        self._publish(lane)

    def flow(self) -> Flow:
        now = time.monotonic()
        partitions = []
        for tp, lane in self.lanes.items():
            oldest = lane.oldest()
            committed = self.committed.get(tp)
            processed = lane.processed_through
            partitions.append(
                PartitionFlow(
                    tp,
                    buffered=len(lane),
                    oldest_age_s=0.0 if oldest is None else now - oldest.admitted,
                    uncommitted=0
                    if processed is None or committed is None
                    else max(0, processed - committed),
                )
            )
        return Flow(self._scheduler.busy, partitions)
