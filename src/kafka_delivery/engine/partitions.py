"""The partitions an engine holds: a lane each, their committed offsets, and the pausing, rewinding
and backing off of their fetches. The lanes' backpressure lives here too: it is about all of them."""

import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_delivery.engine.backoff import PartitionBackoff
from kafka_delivery.engine.lanes import PartitionLane
from kafka_delivery.engine.pauses import Pauses
from kafka_delivery.engine.settings import EngineSettings
from kafka_delivery.operations.metrics import Flow, PartitionFlow, PipelineMetrics


class Partitions:
    def __init__(
        self,
        *,
        consumer: Callable[[], AIOKafkaConsumer | None],
        metrics: PipelineMetrics,
        settings: EngineSettings,
    ) -> None:
        self.consumer = consumer
        self._metrics = metrics
        self._settings = settings
        self.pauses = Pauses(consumer)
        self.backoff = PartitionBackoff(
            metrics=metrics, base_ms=settings.backoff_ms, max_ms=settings.max_backoff_ms
        )
        # The last offset committed per partition (lag, stalls, readiness).
        self.committed: dict[TopicPartition, int] = {}
        self.lanes: dict[TopicPartition, PartitionLane] = {}

    def lane(self, tp: TopicPartition) -> PartitionLane:
        lane = self.lanes.get(tp)
        if lane is None:
            lane = self.lanes[tp] = PartitionLane(tp, self._settings.ordering)
        return lane

    def current(self, tp: TopicPartition) -> PartitionLane | None:
        return self.lanes.get(tp)

    def owns(self, lane: PartitionLane) -> bool:
        """Whether `lane` is still its partition's: not revoked (or replaced) meanwhile."""
        return self.lanes.get(lane.tp) is lane

    def remove(self, lane: PartitionLane) -> None:
        """Drained or abandoned: its records are forgotten, and the partition has no lane any more."""
        lane.drop_from(None)
        self.lanes.pop(lane.tp, None)

    def buffered(self) -> int:
        return sum(len(lane) for lane in self.lanes.values())

    # --- backpressure -----------------------------------------------------------------------------

    def limit(self, lane: PartitionLane) -> None:
        """Backpressure: a partition with a full buffer, or all of them past the instance's bound,
        stop fetching until their records are committed."""
        if len(lane) >= self._settings.max_buffered:
            self.pauses.pause(lane.tp, "full")
        if self.buffered() >= self._instance_bound():
            for tp in self.lanes:
                self.pauses.pause(tp, "full")

    def relieve(self) -> None:
        paused = self.pauses.paused_for("full")
        if not paused or self.buffered() > self._instance_bound() * 3 // 4:
            return
        for tp in paused:
            lane = self.lanes.get(tp)
            if lane is None or len(lane) <= self._settings.max_buffered * 3 // 4:
                self.pauses.resume(tp, "full")

    def _instance_bound(self) -> int:
        return 4 * max(self._settings.max_in_flight, self._settings.max_buffered)

    # --- commits, rewinds and backoffs --------------------------------------------------------------

    def commit_done(self, lane: PartitionLane, offset: int) -> None:
        """The guarantee committed `lane` up to `offset`."""
        gone = lane.committed_through(offset)
        self.committed[lane.tp] = offset
        self.backoff.succeeded(lane.tp, offset)
        now_ms = time.time() * 1000
        observe = self._metrics.end_to_end.observe
        for pending in gone:
            observe(max(0.0, now_ms - pending.record.timestamp) / 1000)

    def note_committed(self, tp: TopicPartition, offset: int) -> None:
        self.committed[tp] = offset

    def rewind(self, lane: PartitionLane, target: int, cause: BaseException | None = None) -> None:
        """Fetch the partition again from `target`; after a failure, only once its backoff ends."""
        consumer = self.consumer()
        if consumer is None or lane.tp not in consumer.assignment():
            return
        lane.rewind(target)
        if cause is None:
            consumer.seek(lane.tp, target)
        else:
            self.back_off(lane.tp, target, cause)

    def back_off(self, tp: TopicPartition, offset: int, exc: BaseException) -> None:
        self.backoff.failed(self.pauses.view("backoff"), tp, offset, exc)

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Revoked partitions: their next assignment starts without a backoff or a pause."""
        self.backoff.forget(partitions)
        self.pauses.forget(partitions)

    def flow(self, busy: int) -> Flow:
        """The flow metrics' reading, with `busy` records running."""
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
        return Flow(busy, partitions)

    def stop_fetching(self) -> None:
        """At shutdown: every partition held stops fetching."""
        for tp in self.lanes:
            self.pauses.pause(tp, "closing")
