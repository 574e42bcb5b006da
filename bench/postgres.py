"""A local PostgreSQL: `scripts/postgres` on its own port and run dir, driven from Python, and a
fresh database for each run. It lives in bench because the bench must run without the tests, while
tests may import the bench (tests/support/postgres.py raises its `PostgresError`).

`make chaos` (127.0.0.1:20432, .cache/chaos-postgres) starts it (`up`) before the first scenario
with database effects and takes it down (`down`, data deleted) at the end; scenario 7 SIGKILLs it
(`kill`) and starts it again (`start`, crash recovery). Every call runs the script with a timeout
(bench/scripts.py); a failure raises `PostgresError` with the script's own messages.
"""

import uuid
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.scripts import run_script
from order_service.processors.stock import TABLES

SCRIPT: Final = Path(__file__).resolve().parents[1] / "scripts" / "postgres"
CONNECT_TIMEOUT_S: Final = 10.0


def with_database(url: str, name: str) -> str:
    """`url` with another database name (credentials, host and port kept)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def fill_stock(url: str, stock: dict[str, int]) -> None:
    """The stock processor's tables (as it creates them) in the database at `url`, with `stock` in
    them (COPY), then ANALYZE: the service plans its statements once (a generic plan), and a plan
    made on a table without statistics would be a guess. Used by the chaos run, the bench and the
    tests alike, so that each starts from the same tables."""
    conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    try:
        await conn.execute(TABLES)
        await conn.copy_records_to_table("stock", records=list(stock.items()), columns=["sku", "available"])
        await conn.execute("ANALYZE stock")
    finally:
        await conn.close(timeout=5)


class PostgresError(RuntimeError):
    """A `scripts/postgres` command failed or did not finish in time."""


class LocalPostgres:
    """One PostgreSQL server of `scripts/postgres` (PG_PORT=`port`, PG_RUN_DIR=`run_dir`).

    `up_timeout` bounds the script's wait for connections (PG_UP_TIMEOUT, crash recovery after a
    kill included), `stop_timeout` a fast shutdown before SIGKILL (PG_STOP_TIMEOUT); each command
    gets these plus a margin (a wait for the script's lock) before it is killed.
    """

    def __init__(
        self,
        *,
        port: int,
        run_dir: Path,
        up_timeout: float = 60.0,
        stop_timeout: float = 20.0,
        script: Path = SCRIPT,
    ) -> None:
        self.port: Final = port
        self.run_dir: Final = run_dir
        self.up_timeout: Final = up_timeout
        self.stop_timeout: Final = stop_timeout
        self.script: Final = script
        self.url: str | None = None  # of the `orders` database, once `up` has run

    def __repr__(self) -> str:
        return f"LocalPostgres(127.0.0.1:{self.port}, run dir {self.run_dir})"

    def up(self) -> str:
        """Install if missing, create the cluster if missing, start it; the `orders` database's URL.
        (An install may take minutes: apt.)"""
        lines = self._run("up", timeout=900 + self._long).strip().splitlines()
        if not lines or not lines[-1].startswith("postgresql://"):
            raise PostgresError(f"scripts/postgres up printed no URL: {lines!r}")
        self.url = lines[-1]
        return self.url

    def down(self) -> None:
        """Stop it and delete its data."""
        self._run("down", timeout=self._long)
        self.url = None

    def kill(self) -> None:
        """SIGKILL the postmaster and its children at once (a crash); return once they are gone."""
        self._run("kill", timeout=self._short)

    def start(self) -> None:
        """Start it on its data (crash recovery after `kill`); return once it accepts connections."""
        self._run("start", timeout=self._long)

    def running(self) -> bool:
        return self._run("status", timeout=self._short, ok=(0, 1)).startswith("running")

    def database_url(self, name: str) -> str:
        if self.url is None:
            raise PostgresError("scripts/postgres up has not run")
        return with_database(self.url, name)

    async def fresh_database(self, label: str, *, prefix: str = "chaos") -> str:
        """A new empty database for one run, named after `prefix` and `label`; its URL."""
        plain = "".join(c if c.isalnum() else "_" for c in label.lower())
        name = f"{prefix}_{plain}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(self.database_url("postgres"), timeout=CONNECT_TIMEOUT_S)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close(timeout=5)
        return self.database_url(name)

    @property
    def _long(self) -> float:
        # Possibly a wait for another command's lock (the script's own bound), then its own waits.
        return 2 * (self.up_timeout + self.stop_timeout) + 120

    @property
    def _short(self) -> float:
        return self.up_timeout + self.stop_timeout + 90

    def _run(self, *args: str, timeout: float, ok: tuple[int, ...] = (0,)) -> str:
        env = {
            "PG_PORT": str(self.port),
            "PG_RUN_DIR": str(self.run_dir),
            "PG_UP_TIMEOUT": str(round(self.up_timeout)),
            "PG_STOP_TIMEOUT": str(round(self.stop_timeout)),
        }
        return run_script(self.script, *args, env=env, timeout=timeout, error=PostgresError, ok=ok).stdout
