"""Records' database work grouped into transactions: one transaction at a time, as many records in
it as are waiting, with each record's inbox row in the same transaction.

Why batches: a transaction of its own per record costs BEGIN and COMMIT round trips and a WAL flush
per record. Why no savepoint per record: SAVEPOINT and RELEASE are two more round trips per record,
for a case (a processor raising) that is rare. Instead a batch runs optimistically; when a record's
processor raises, the transaction is rolled back, that record fails alone, and the others run again
at once in a new transaction. Measured in docs/benchmarks.md ("Effects").

Why one transaction at a time: two at once from one process would lock the same hot rows in
opposite sequence and deadlock; PostgreSQL then detects it only after `deadlock_timeout` (1 s).
Records keep arriving while a transaction runs and form the next batch.
"""

import asyncio
import contextvars
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from kafka_delivery.effects.database import unavailable
from kafka_delivery.effects.inbox import Coordinates, Inbox

logger = logging.getLogger(__name__)
_transaction: contextvars.ContextVar["asyncpg.Connection[Any] | None"] = contextvars.ContextVar(
    "effects_transaction", default=None
)
_coordinates: contextvars.ContextVar[Coordinates | None] = contextvars.ContextVar(
    "effects_coordinates", default=None
)
Work = Callable[[], Awaitable[bytes]]


def transaction() -> "asyncpg.Connection[Any]":
    """The connection of the transaction the current record's work runs in.

    Everything executed on it commits together with the record's inbox row, or not at all. Do not
    commit, roll back or close it. Raises LookupError outside a record's work.
    """
    conn = _transaction.get()
    if conn is None:
        raise LookupError("no effects transaction: transaction() is only valid inside a record's work")
    return conn


def coordinates() -> Coordinates:
    """(group, topic, partition, offset) of the record whose work is running: what an effect can
    record or derive an idempotency key from. Raises LookupError outside a record's work."""
    current = _coordinates.get()
    if current is None:
        raise LookupError("no record: coordinates() is only valid inside a record's work")
    return current


@dataclass(slots=True)
class _Item:
    coordinates: Coordinates
    work: Work
    future: "asyncio.Future[bytes]"


class _RecordFailed(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(repr(error))
        self.index = index
        self.error = error


class EffectBatches:
    """Runs each record's work in a database transaction shared with the records waiting next to it.

    `run(coordinates, work)` returns the outcome `work` produced, once the transaction holding it has
    committed. With an inbox, a record already in it is not worked again: its stored outcome is
    returned. Without one (`inbox=None`), effects are at least once.

    While the database is unavailable (`unavailable`), the batch is retried with a growing backoff,
    for as long as its records wait: nothing is committed past them, and `problem()` says why.
    A record whose own work raises anything else fails alone: `run` raises that error.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable["asyncpg.Pool[Any]"]],
        *,
        inbox: Inbox | None,
        retention_s: float = 7 * 24 * 3600.0,
        max_batch: int = 500,
        transaction_timeout_s: float = 30.0,
        backoff_ms: int = 100,
        max_backoff_ms: int = 5_000,
    ) -> None:
        self._connect = connect
        self._pool: asyncpg.Pool[Any] | None = None
        self._inbox = inbox
        self._retention_s = retention_s
        self._retaining: asyncio.Task[None] | None = None
        self._max_batch = max_batch
        self._timeout_s = transaction_timeout_s
        self._backoff_ms = backoff_ms
        self._max_backoff_ms = max_backoff_ms
        self._pending: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing: tuple[float, str] | None = None
        self.batches = 0
        self.records = 0

    @property
    def pool(self) -> "asyncpg.Pool[Any]":
        if self._pool is None:
            raise RuntimeError("EffectBatches.start() has not connected yet")
        return self._pool

    async def start(self) -> None:
        """Connect, create the inbox when missing, start batching and the inbox's retention."""
        if self._task is not None:
            return
        pool = self._pool = await self._connect()
        if self._inbox is not None:
            async with pool.acquire() as conn:
                await self._inbox.create(conn)
            every_s = min(self._retention_s / 10, 600.0)
            retain = self._inbox.retain(pool, retention_s=self._retention_s, every_s=every_s)
            self._retaining = asyncio.create_task(retain, name="inbox-retention")
        self._task = asyncio.create_task(self._run_batches(), name="effect-batches")

    async def stop(self) -> None:
        """Stop batching: records still waiting fail with CancelledError (nothing of theirs was
        committed, so nothing is committed past them). The pool stays open (`close`)."""
        for task in (self._task, self._retaining):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._retaining = None
        while self._pending:
            self._pending.popleft().future.cancel()

    async def close(self) -> None:
        """`stop`, then close the pool (5 s at most, then its connections are terminated)."""
        await self.stop()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                async with asyncio.timeout(5.0):
                    await pool.close()
            except TimeoutError:
                pool.terminate()

    async def run(self, coordinates: Coordinates, work: Work) -> bytes:
        if self._task is None:
            raise RuntimeError("EffectBatches.start() was not called")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(coordinates, work, future))
        self._wake.set()
        return await future

    def problem(self) -> str | None:
        """Why the database cannot take work now, or None: the last batch's failure, while it lasts."""
        if self._failing is None:
            return None
        since, error = self._failing
        return f"database unavailable for {time.monotonic() - since:.0f} s: {error}"

    async def check(self, timeout_s: float = 2.0) -> str | None:
        """`problem()`, or whether the database answers a query now (readiness, when no batch runs)."""
        if (problem := self.problem()) is not None:
            return problem
        try:
            async with asyncio.timeout(timeout_s):
                await self.pool.fetchval("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure to answer means unavailable
            return f"database unavailable: {type(exc).__name__}"
        return None

    async def _run_batches(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[_Item] = []
            while self._pending and len(batch) < self._max_batch:
                item = self._pending.popleft()
                if not item.future.done():  # its waiter was cancelled: a revoke, or the shutdown
                    batch.append(item)
            if batch:
                await self._settle(batch)

    async def _settle(self, batch: list[_Item]) -> None:
        """Commit `batch`: failed records leave it one by one, unavailability waits and retries."""
        failures = 0
        while batch := [item for item in batch if not item.future.done()]:
            try:
                async with asyncio.timeout(self._timeout_s):
                    outcomes = await self._transact(batch)
            except _RecordFailed as failed:
                item = batch.pop(failed.index)
                if not item.future.done():  # its waiter may have gone: a revoke, the shutdown
                    item.future.set_exception(failed.error)
                continue
            except Exception as exc:  # noqa: BLE001 - the database's, whatever it is: wait and retry
                failures += 1
                self._unavailable(exc, failures)
                ceiling = min(self._max_backoff_ms, self._backoff_ms * 2 ** min(failures - 1, 16))
                await asyncio.sleep(random.uniform(ceiling / 2, ceiling) / 1000)
                continue
            if self._failing is not None:
                logger.warning("database available again after %d failed attempt(s)", failures)
                self._failing = None
            self.batches += 1
            self.records += len(batch)
            for item, outcome in zip(batch, outcomes, strict=True):
                if not item.future.done():
                    item.future.set_result(outcome)
            return

    async def _transact(self, batch: list[_Item]) -> list[bytes]:
        """One transaction: look the batch up in the inbox, work the new records, store them."""
        async with self.pool.acquire() as conn, conn.transaction():
            inbox = self._inbox
            stored = await inbox.lookup(conn, [i.coordinates for i in batch]) if inbox is not None else {}
            fresh: dict[Coordinates, bytes] = {}
            outcomes: list[bytes] = []
            token = _transaction.set(conn)
            try:
                for index, item in enumerate(batch):
                    outcome = stored.get(item.coordinates) or fresh.get(item.coordinates)
                    if outcome is None:
                        _coordinates.set(item.coordinates)
                        try:
                            outcome = await item.work()
                        except Exception as exc:
                            if unavailable(exc, connection_lost=conn.is_closed()):
                                raise
                            raise _RecordFailed(index, exc) from exc
                        fresh[item.coordinates] = outcome
                    outcomes.append(outcome)
            finally:
                _transaction.reset(token)
                _coordinates.set(None)
            if inbox is not None and fresh:
                await inbox.store(conn, fresh)
        return outcomes

    def _unavailable(self, exc: BaseException, failures: int) -> None:
        error = type(exc).__name__
        if isinstance(exc, asyncpg.PostgresError):
            error = f"{error}: {exc}"
        if self._failing is None:
            self._failing = (time.monotonic(), error)
            logger.warning("database unavailable, retrying with backoff: %s", error)
        else:
            self._failing = (self._failing[0], error)
            logger.info("database still unavailable (attempt %d): %s", failures, error)
