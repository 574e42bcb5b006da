"""A partition whose publish or commit failed: its records from there are forgotten, the guarantee
recovers, and the partition is fetched again from where the guarantee says, after a backoff."""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from kafka_delivery.engine.backoff import refusal
from kafka_delivery.engine.guarantee import Guarantee
from kafka_delivery.engine.lanes import PartitionLane
from kafka_delivery.engine.partitions import Partitions

logger = logging.getLogger(__name__)


class Failures:
    def __init__(self, guarantee: Guarantee, partitions: Partitions) -> None:
        self._guarantee = guarantee
        self._partitions = partitions
        # Recoveries from failed publishes, under way (`fail_soon`).
        self.tasks: set[asyncio.Task[Any]] = set()

    async def fail(self, lane: PartitionLane, offset: int, exc: BaseException, what: str) -> None:
        """A record's output was not published or acknowledged, or a commit failed: forget the
        records from there on (all uncommitted ones, for an aborted transaction), let the guarantee
        recover, and fetch the partition again from where it says, after a backoff."""
        if self._failing(lane, offset, exc, what):
            await self._recover(lane, offset, exc)

    def fail_soon(self, lane: PartitionLane, offset: int, exc: BaseException, what: str) -> None:
        """`fail`, for a caller that cannot wait: the lane fails now, and recovers in a task."""
        if self._failing(lane, offset, exc, what):
            self._spawn(self._recover(lane, offset, exc))

    def _failing(self, lane: PartitionLane, offset: int, exc: BaseException, what: str) -> bool:
        """The part of `fail` that cannot wait: whether the lane is to recover."""
        if not self._partitions.owns(lane):
            # Revoked meanwhile: a commit or a send that outlived its partition's drain. Its records
            # were abandoned, and the partition is its new owner's. Recovering would seek or pause
            # it, and in exactly-once re-create its producer: that fences the new owner's.
            logger.debug(what + " after its partition was revoked: %r", lane.tp, offset, exc)
            return False
        level = logging.DEBUG if refusal(exc) else logging.WARNING
        logger.log(level, what + "; it will be retried: %r", lane.tp, offset, exc)
        lane.fail(None if self._guarantee.drops_all_on_failure else offset)
        return True

    async def _recover(self, lane: PartitionLane, offset: int, exc: BaseException) -> None:
        try:
            target = await self._guarantee.recover(lane, offset, exc)
        finally:
            lane.recovered()
        if target is not None:
            self._partitions.rewind(lane, target, exc)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: "asyncio.Task[None]") -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("recovery of a partition failed unexpectedly: %r", exc, exc_info=exc)
