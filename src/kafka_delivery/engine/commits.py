"""Commit rounds: at most one per interval while records flow, and a revoked or closing partition's
records committed before it goes (a drain), within a timeout."""

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka import TopicPartition

from kafka_delivery.engine.guarantee import GroupMovedOn, Guarantee
from kafka_delivery.engine.lanes import PartitionLane
from kafka_delivery.engine.partitions import Partitions

logger = logging.getLogger(__name__)


class Committer:
    def __init__(self, guarantee: Guarantee, partitions: Partitions, *, interval_ms: int) -> None:
        self._guarantee = guarantee
        self._partitions = partitions
        self._interval_s = interval_ms / 1000
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """An acknowledgement arrived: a round may commit more now."""
        self._wake.set()

    async def run(self) -> None:
        """A commit round when acknowledgements arrive, at most one per commit interval: a commit
        costs a round trip to the group coordinator and the CPU to make it, whatever it covers."""
        interval = self._interval_s
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
                await self._guarantee.commit(_committable(self._partitions.lanes.values()), force=False)
            except Exception:
                logger.exception("commit round failed; retrying at the next one")
            self._partitions.relieve()

    async def drain(self, partitions: list[TopicPartition], timeout_s: float) -> None:
        """Commit the partitions' records within `timeout_s`; whatever is left then is abandoned,
        never committed past. The partitions have no lane afterwards."""
        lanes = [self._partitions.lanes[tp] for tp in partitions]
        for lane in lanes:
            lane.close()
        try:
            async with asyncio.timeout(timeout_s):
                while any(len(lane) for lane in lanes):
                    await self._guarantee.commit(_committable(lanes), force=True)
                    if any(len(lane) for lane in lanes):
                        self._wake.clear()
                        try:
                            async with asyncio.timeout(self._interval_s):
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
        except GroupMovedOn as moved:
            left = sum(len(lane) for lane in lanes)
            logger.warning(
                "abandoning %d uncommitted records of %d partitions: the group moved on (%s); "
                "their new owner processes them again",
                left,
                len(lanes),
                moved,
            )
        finally:
            for lane in lanes:
                self._partitions.remove(lane)


def _committable(lanes: Iterable[PartitionLane]) -> list[PartitionLane]:
    """Lanes that may commit now: not while a failure is being recovered from."""
    return [lane for lane in lanes if not lane.failing]
