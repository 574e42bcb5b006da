"""Running a record: on a worker (the scheduler's), or eagerly in the caller with the handler's
`now`, going on in a task of its own when it has to wait (see engine.py)."""

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any

from kafka_delivery.engine.lanes import Pending
from kafka_delivery.engine.publishing import Publisher
from kafka_delivery.engine.scheduler import Scheduler
from kafka_delivery.logs import current_record
from kafka_delivery.types import InputRecord, OutgoingRecord, RecordHandler, Waits


class Runner:
    def __init__(
        self, handle: RecordHandler, publisher: Publisher, *, max_in_flight: int, eager: bool
    ) -> None:
        self._handle = handle
        self._now: Callable[[InputRecord], Sequence[OutgoingRecord]] | None = None
        if eager:
            self._now = getattr(handle, "now", None)
            if self._now is None:
                raise ValueError("an eager engine needs a handler with `now` (an ImmediateHandler)")
        self._publisher = publisher
        self.scheduler = Scheduler(self._run, max_in_flight=max_in_flight)
        # Records run eagerly that wait in tasks of their own.
        self.tasks: set[asyncio.Task[Any]] = set()

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
            self.scheduler.push(other)
        return ready[0] if ready else None

    def run_now(self, pending: Pending) -> None:
        """Run `pending` in the caller with the handler's `now`; if it has to wait, in a task from there."""
        current_record.set(pending.record)
        try:
            pending.outputs = self._now(pending.record)  # type: ignore[misc]
        except Waits as waits:
            pending.lane.hold(pending)  # later records of its key wait for it now
            self.scheduler.went_off()
            task = asyncio.get_running_loop().create_task(waits.rest)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            task.add_done_callback(functools.partial(self._went_on, pending))
            return
        except Exception as exc:  # noqa: BLE001 - the handler routes failures; this is a defect
            pending.error = exc
        for ready in self._finish(pending, publish=False):  # published after its batch (or turn)
            self.scheduler.push(ready)

    def _went_on(self, pending: Pending, task: "asyncio.Task[Sequence[OutgoingRecord]]") -> None:
        """A record run eagerly finished in its task."""
        self.scheduler.came_back()
        if task.cancelled():  # the engine is closing: nothing of it is published any more
            self._finish(pending, publish=False)
            return
        if (exc := task.exception()) is not None:
            pending.error = exc
        else:
            pending.outputs = task.result()
        for ready in self._finish(pending):
            self.scheduler.push(ready)
        self.scheduler.wake_if_ready()  # a worker may take a record now that this one is done

    def _finish(self, pending: Pending, *, publish: bool = True) -> list[Pending]:
        """Mark `pending` processed and publish what it lets through; returns the records it was the
        last predecessor of, which may start now."""
        ready = pending.lane.finish(pending)
        if publish and not pending.dropped:
            self._publisher.publish(pending.lane)
        return ready
