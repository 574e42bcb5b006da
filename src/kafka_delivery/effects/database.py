"""The connection pool, and the line between "the database is unavailable" and "this record failed".

asyncpg, not psycopg 3: it is asyncio-native, speaks the binary protocol from Cython and prepares
and caches every statement by itself; on this machine a round trip of a prepared statement costs the
client ~35 us of CPU with asyncpg against ~70 us with psycopg's C build (both on 127.0.0.1, one
connection, `SELECT $1::int`, 20,000 calls). The effects are bound by round trips per record, and
CPU is what two cores shared with Kafka and PostgreSQL lack.
"""

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import asyncpg

# SQLSTATE classes and codes that say nothing about the record: the connection, the server's
# resources or state, or a conflict with a concurrent transaction (deadlock, serialization). Anything
# else a processor raises (a constraint violation, bad data) is that record's own failure. What fails
# outside the processor, in the inbox's own statements, is always the database's (batches.py).
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58", "40")  # connection, resources, operator, system, rollback
_UNAVAILABLE_CODES = {
    "25006",  # read_only_sql_transaction: a standby during a failover
    "55P03",  # lock_not_available
}
# Refusals no retry fixes: the start fails at once instead of waiting for its deadline.
_REFUSED = (
    asyncpg.InvalidAuthorizationSpecificationError,  # bad password or user, pg_hba says no
    asyncpg.InvalidCatalogNameError,  # the database does not exist
    asyncpg.InsufficientPrivilegeError,
)


class DatabaseRefused(Exception):
    """The database refused the service's connection, or is out of reach past the deadline."""


def unavailable(exc: BaseException, *, connection_lost: bool = True) -> bool:
    """Whether `exc`, raised by a record's work, means the database, not the record, is at fault:
    retried, never dead-lettered.

    PostgreSQL's errors say by their SQLSTATE; the driver's own (`InterfaceError`, a closed
    connection) are the database's. An `OSError` or `TimeoutError` is the database's only when the
    connection is gone (`connection_lost`): raised while it is open, it came from something else
    the processor called (an HTTP client's timeout), and is the record's own transient error. A slow
    statement is cancelled by the server (`statement_timeout`, SQLSTATE 57014), so its error says so.
    """
    if isinstance(exc, asyncpg.PostgresError):
        code = exc.sqlstate or ""
        return code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.ConnectionDoesNotExistError):
        return True
    return connection_lost and isinstance(exc, OSError | TimeoutError)


def where(dsn: str) -> str:
    """host:port/database of `dsn`, without user or password: what errors and logs may name."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or '/'}"


async def connect_pool(
    dsn: str, *, timeout_s: float, statement_timeout_s: float, max_size: int = 4
) -> "asyncpg.Pool[Any]":
    """A pool whose first connection answered, within `timeout_s`: an unreachable server is tried
    again until then, a refusal (credentials, unknown database) fails at once. Errors name host, port
    and database only: the URL holds the password.

    No connection floor (`min_size=0`): with one, asyncpg reconnects in the background while the
    server is down and logs a traceback each second. The batches reconnect when they next need to.
    """
    deadline = time.monotonic() + timeout_s
    pool = asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=max_size,
        timeout=min(timeout_s, 10.0),  # each connection attempt
        # Server-side, not asyncpg's command_timeout: the server cancels the statement with
        # SQLSTATE 57014, which `unavailable` can tell from a processor's own TimeoutError.
        # A batch's statements are few and always the same: keep them prepared, and plan them once.
        # A custom plan per execution cost ~0.5 ms of planning for the stock processor's statement
        # (EXPLAIN ANALYZE), twice its execution.
        statement_cache_size=256,
        server_settings={
            "plan_cache_mode": "force_generic_plan",
            "statement_timeout": str(int(statement_timeout_s * 1000)),
        },
    )
    await pool  # no connection is made yet (min_size=0)
    last: BaseException | None = None
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(left):
                await pool.fetchval("SELECT 1", timeout=min(left, 10.0))
            return pool
        except _REFUSED as exc:
            pool.terminate()
            raise DatabaseRefused(f"the database at {where(dsn)} refused the connection: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - unreachable for now: tried again until the deadline
            last = exc
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    pool.terminate()
    raise DatabaseRefused(
        f"the database at {where(dsn)} did not answer within {timeout_s:g} s"
        + (f": {type(last).__name__}" if last is not None else "")
    )
