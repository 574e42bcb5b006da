"""Publishing a lane: its processed records in offset order, through the guarantee, and what an
acknowledgement says (a refused output stops its partition when the guarantee asks for that)."""

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka_delivery.engine.failures import Failures
from kafka_delivery.engine.guarantee import Guarantee
from kafka_delivery.engine.lanes import PartitionLane, ack_error
from kafka_delivery.engine.partitions import Partitions
from kafka_delivery.operations.metrics import PipelineMetrics


@dataclass(frozen=True, slots=True)
class Publisher:
    guarantee: Guarantee
    partitions: Partitions
    failures: Failures
    metrics: PipelineMetrics
    on_ack: Callable[[], None]
    """Called at every acknowledgement: the committer's wake-up."""

    def publish(self, lane: PartitionLane) -> None:
        """Publish the processed head of the lane, and every processed record after it, in order."""
        if lane.failing or lane.lock.locked() or not self.partitions.owns(lane):
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
                self.failures.fail_soon(
                    lane, pending.offset, exc, "could not hand record %s@%s to the producer"
                )
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
        self.on_ack()

    def _refused(self, lane: PartitionLane, ack: "asyncio.Future[Any]", error: BaseException) -> None:
        """Stop `lane` at its first record that `ack` was for, before it publishes anything more; it
        is fetched again from there (batches.py keeps the partition's later batches from the log)."""
        pending = next((s for s in lane.unacked if ack in s.acks and not s.dropped), None)
        if pending is None:
            return  # committed or dropped meanwhile
        self.metrics.publish_failures.inc()
        self.failures.fail_soon(lane, pending.offset, error, "output of %s@%s was not acknowledged")
