"""Stall detection: a partition that is behind and whose committed offset stops advancing."""

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field

from aiokafka import TopicPartition
from prometheus_client import Counter

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Watch:
    position: int  # the last committed offset seen, or the log end when first seen without one
    known: bool  # whether position is a committed offset
    since: float  # when the partition last advanced or was caught up
    stalled: bool = False


@dataclass
class StallMonitor:
    """Warns once when an assigned partition is behind and has had no commit for `stall_after_s`.

    A partition with no committed offset yet is measured from the log end at which the monitor first
    saw it: records already behind then are not counted until the first commit, so an idle partition
    is never reported just because the pipeline has not committed since it was assigned. While the
    log end is unknown (None), a partition is neither stalled nor recovered. A partition that is
    caught up restarts the clock, so a record arriving after a quiet hour is not a stall.
    `stalls` is a Counter with the label `group`; it counts entries into a stall.
    """

    _: KW_ONLY
    group: str
    assignment: Callable[[], Iterable[TopicPartition]]
    end_offset: Callable[[TopicPartition], int | None]
    committed: Mapping[TopicPartition, int]
    stall_after_s: float
    stalls: Counter
    clock: Callable[[], float] = time.monotonic
    _watches: dict[TopicPartition, _Watch] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        # The group's series from the start: Prometheus sees the first stall as an increase.
        self.stalls.labels(self.group)

    def stalled(self) -> dict[TopicPartition, float]:
        """Seconds since each stalled partition last made progress."""
        now = self.clock()
        return {tp: now - w.since for tp, w in self._watches.items() if w.stalled}

    def check(self) -> None:
        """Updates every assigned partition; forgets revoked ones silently."""
        now = self.clock()
        assigned = set(self.assignment())
        for tp in self._watches.keys() - assigned:
            del self._watches[tp]
        for tp in assigned:
            end = self.end_offset(tp)
            if end is not None:
                self._update(tp, end, self.committed.get(tp), now)

    async def run(self, interval_s: float) -> None:
        """Checks every `interval_s` until cancelled."""
        while True:
            try:
                self.check()
            except Exception:  # a failed check must not end stall detection for good
                logger.exception("stall check failed for group %s", self.group)
            await asyncio.sleep(interval_s)

    def _update(self, tp: TopicPartition, end: int, committed: int | None, now: float) -> None:
        watch = self._watches.get(tp)
        if watch is None:
            position = end if committed is None else committed
            self._watches[tp] = _Watch(position, known=committed is not None, since=now)
            return
        # A commit moving back (a rewind) is activity too: measure from it rather than report a stall.
        moved = committed is not None and (not watch.known or committed != watch.position)
        if committed is not None and moved:
            watch.position, watch.known = committed, True
        lag = end - watch.position
        if moved or lag <= 0:
            if watch.stalled:
                self._log(logging.INFO, "partition %s recovered after %.0fs stalled", tp, now - watch.since)
            watch.since, watch.stalled = now, False
        elif not watch.stalled and now - watch.since >= self.stall_after_s:
            watch.stalled = True
            self.stalls.labels(self.group).inc()
            self._log(
                logging.WARNING,
                "partition %s stalled: no commit for %.0fs, %d records behind",
                tp,
                now - watch.since,
                lag,
                lag=lag,
            )

    def _log(self, level: int, msg: str, tp: TopicPartition, *args: object, **extra: object) -> None:
        fields = {"group": self.group, "topic": tp.topic, "partition": tp.partition, **extra}
        logger.log(level, msg, f"{tp.topic}-{tp.partition}", *args, extra=fields)
