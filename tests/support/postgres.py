"""The tests' PostgreSQL: `scripts/postgres` on its own port and run dir, or POSTGRES_URL.

`postgres_server` (tests/conftest.py) runs `scripts/postgres up` with TEST_ENV once a session;
`database_url` gives each test a fresh database on it. `kill_postgres`, `stop_postgres` and
`start_postgres` run the script's commands on that server, each with a timeout; a failure or a
timeout raises `PostgresError` with the script's own messages. They need the server the script
runs: with POSTGRES_URL (a server of someone else's) a test that calls them is skipped.
"""

import asyncio
import contextlib
import fcntl
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from bench.postgres import PostgresError
from bench.postgres import with_database as with_database

from bench import scripts

ROOT: Final = Path(__file__).resolve().parents[2]
SCRIPT: Final = ROOT / "scripts" / "postgres"
PORT: Final = 25432
RUN_DIR: Final = ROOT / ".cache" / "postgres-test"
# The script's own bounds: its wait for connections, and for a fast shutdown before SIGKILL.
UP_TIMEOUT_S: Final = 30
STOP_TIMEOUT_S: Final = 20
TEST_ENV: Final = {
    "PG_PORT": str(PORT),
    "PG_RUN_DIR": str(RUN_DIR),
    "PG_UP_TIMEOUT": str(UP_TIMEOUT_S),
    "PG_STOP_TIMEOUT": str(STOP_TIMEOUT_S),
}
# Each command's timeout: possibly a wait for another command's lock (the script holds it at most
# for about up + stop + 70 s), then its own bounded waits. `up` may install the server first
# (apt-get, up to 900 s in the script).
_LOCK_WAIT_S: Final = UP_TIMEOUT_S + STOP_TIMEOUT_S + 70
_UP_S: Final = 900 + _LOCK_WAIT_S + UP_TIMEOUT_S + 60
_START_S: Final = _LOCK_WAIT_S + UP_TIMEOUT_S + 30
_STOP_S: Final = _LOCK_WAIT_S + STOP_TIMEOUT_S + 30
_KILL_S: Final = _LOCK_WAIT_S + 30
# Sessions that use the test server hold a shared lock on this file; the last one takes it down.
_USERS: Final = ROOT / ".cache" / "postgres-test.users"
CONNECT_TIMEOUT_S: Final = 10.0


def external_url() -> str | None:
    """POSTGRES_URL: a server to use instead of starting one."""
    return os.environ.get("POSTGRES_URL") or None


def run_script(*args: str, timeout: float, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """`scripts/postgres ARGS` on the test server; its output, or PostgresError."""
    return scripts.run_script(SCRIPT, *args, env=TEST_ENV, timeout=timeout, error=PostgresError, ok=ok)


def up_postgres() -> str:
    """`scripts/postgres up`: the URL of the `orders` database (the last line it prints)."""
    lines = run_script("up", timeout=_UP_S).stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("postgresql://"):
        raise PostgresError(f"scripts/postgres up printed no URL: {lines!r}")
    return lines[-1]


def _own_server() -> None:
    if external_url():
        pytest.skip("needs the server of scripts/postgres to kill, stop or start it, not POSTGRES_URL")


def kill_postgres() -> None:
    """SIGKILL the server (postmaster and children at once); return once they are gone."""
    _own_server()
    run_script("kill", timeout=_KILL_S)


def start_postgres() -> None:
    """Start the server again on its data (crash recovery after a kill); return once it accepts
    connections."""
    _own_server()
    run_script("start", timeout=_START_S)


def stop_postgres() -> None:
    """Fast shutdown (SIGKILL after the script's PG_STOP_TIMEOUT); return once it is gone."""
    _own_server()
    run_script("stop", timeout=_STOP_S)


def postgres_status() -> tuple[int, str]:
    """`scripts/postgres status`: its exit status (0 only when running) and its line."""
    _own_server()
    done = run_script("status", timeout=_KILL_S, ok=(0, 1))
    return done.returncode, done.stdout.strip()


@contextlib.contextmanager
def server_session() -> Iterator[str]:
    """The URL of the `orders` database on the test server, for one pytest session.

    POSTGRES_URL when set (nothing is started or stopped). Else `scripts/postgres up`, and at the
    end `down`, unless another session (`scripts/test` runs two pytest processes side by side)
    still uses the server: each holds a shared lock on .cache/postgres-test.users.
    """
    if url := external_url():
        asyncio.run(wait_for_postgres(url))
        yield url
        return
    _USERS.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_USERS, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # Held exclusively only while the last session takes the server down.
        deadline = time.monotonic() + _STOP_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PostgresError(f"another session held {_USERS} for {_STOP_S}s") from None
                time.sleep(0.2)
        yield up_postgres()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another session still uses it; the last one takes it down
        run_script("down", timeout=_STOP_S)
    finally:
        os.close(fd)


async def connect(url: str, timeout: float = CONNECT_TIMEOUT_S) -> asyncpg.Connection:
    return await asyncpg.connect(url, timeout=timeout)


async def wait_for_postgres(url: str, timeout: float = 30.0) -> None:
    """Until `SELECT 1` works at `url`; fail the test run after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = await connect(url, timeout=5)
            try:
                await connection.fetchval("SELECT 1")
                return
            finally:
                await connection.close(timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > deadline:
                pytest.fail(f"PostgreSQL at {redacted(url)} did not answer within {timeout}s: {exc!r}")
        await asyncio.sleep(0.5)


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def unique_database() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


async def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server of `server_url`; its URL."""
    connection = await connect(server_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close(timeout=5)
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drop it, closing the connections still open to it (WITH (FORCE)).

    The test server is started again first when it does not answer: a test that killed or
    stopped it and failed before it started it again leaves it so for the tests after it.
    """
    try:
        connection = await connect(server_url)
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError):
        if external_url():
            raise
        await asyncio.to_thread(up_postgres)
        connection = await connect(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close(timeout=5)
