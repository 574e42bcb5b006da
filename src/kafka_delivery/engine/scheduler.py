"""Running records: the workers of a delivery engine (`Scheduler`: at most MAX_IN_FLIGHT records
at once, in short turns of the event loop), and what a worker or an eager engine does with one
(`Runner`: on a worker, or in the caller with the handler's `now`, going on in a task of its own
when it has to wait; see engine.py)."""

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kafka_delivery.engine.lanes import Pending
from kafka_delivery.engine.publishing import Publisher
from kafka_delivery.logs import current_record
from kafka_delivery.types import InputRecord, OutgoingRecord, RecordHandler, Waits

logger = logging.getLogger(__name__)
# How long all workers together run records in one turn of the event loop before they yield to it:
# a fetch, a send or an ack takes a few turns, and each waits for the turn running when it is due.
# Short turns keep that wait short (measured at half load: p99 ~40 ms with 0.5 ms turns, ~65 ms
# with 2 ms); each turn also costs, and with this many records ready to run the engine is behind
# anyway, so it takes longer ones (0.5 ms turns throughout cost ~10% of the maximum rate).
_TURN_S = 0.0005
_BACKLOG = 256
_BACKLOG_TURN_S = 0.002


class Scheduler:
    """Records ready to run, and the workers that run them with `run`: it processes, finishes and
    publishes a record, and returns one that its end made ready, to run next on the same worker."""

    def __init__(self, run: Callable[[Pending], Awaitable[Pending | None]], *, max_in_flight: int) -> None:
        self._run = run
        self._cap = max_in_flight
        # Records ready to run, and the workers waiting for one (see _work).
        self._ready: deque[Pending] = deque()
        self._parked: deque[asyncio.Future[None]] = deque()
        self._waking = 0
        self._turn_ends: float | None = None
        self.workers: list[asyncio.Task[None]] = []
        # Records running: on workers, and records run eagerly that went on in a task (`went_off`).
        self.busy = 0

    def start(self) -> None:
        self.workers = [asyncio.create_task(self._work()) for _ in range(self._cap)]

    def may_run_now(self) -> bool:
        """Whether a record may run in the caller now: a worker is free and no record waits for one."""
        return self.busy < self._cap and not self._ready

    def went_off(self) -> None:
        """A record run eagerly goes on in a task of its own: it counts against MAX_IN_FLIGHT."""
        self.busy += 1

    def came_back(self) -> None:
        """A record that went off (`went_off`) finished in its task."""
        self.busy -= 1

    def push(self, pending: Pending) -> None:
        self._ready.append(pending)
        self.wake_one()

    def wake_if_ready(self) -> None:
        if self._ready:
            self.wake_one()

    def wake_one(self) -> None:
        """Wake one parked worker, unless one is already on its way or this turn is spent.

        One at a time: waking a worker per ready record would put hundreds of task steps in one
        turn of the event loop after a large fetch, and fetches, sends and acks wait behind them
        (measured: p50 latency 339 ms instead of 21 ms at 3,000 records/s). A woken worker that
        leaves records behind wakes the next, so an I/O-bound processor still gets every worker.
        """
        if self._turn_spent():
            return  # the next turn wakes one (_next_turn)
        while self._waking == 0 and self._parked:
            waiter = self._parked.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._waking += 1

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        cap = self._cap
        while True:
            # At most `cap` records at once: workers, and records run eagerly that went on in a task.
            if not self._ready or self._turn_spent() or self.busy >= cap:
                waiter = loop.create_future()
                self._parked.append(waiter)
                await waiter
                self._waking -= 1
                continue
            pending: Pending | None = self._ready.popleft()
            if self._ready:
                self.wake_one()
            # A record that its predecessor's end made ready runs next on the same worker: a key's
            # (or in partition order, a partition's) records run back to back, without a hand-over.
            while pending is not None:
                self._start_turn(loop)
                current, pending = pending, None
                self.busy += 1
                try:
                    pending = await self._run(current)
                except Exception:
                    logger.exception("unexpected failure delivering %s@%s", current.lane.tp, current.offset)
                finally:
                    self.busy -= 1
                if pending is not None and self._turn_spent():
                    self._ready.appendleft(pending)  # first in the next turn
                    pending = None

    # Turns: all workers together run records for at most a turn's budget in one turn of the loop, then
    # park until the next. A budget per worker would let a turn grow with the number of runnable
    # workers, and with a CPU-bound processor a large fetch would hold the loop for tens of ms while
    # fetches, sends and acks, each a few turns long, wait.

    def _turn_spent(self) -> bool:
        return self._turn_ends is not None and time.perf_counter() >= self._turn_ends

    def _start_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._turn_ends is None:
            budget = _TURN_S if len(self._ready) < _BACKLOG else _BACKLOG_TURN_S
            self._turn_ends = time.perf_counter() + budget
            loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._turn_ends = None
        self.wake_if_ready()


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
