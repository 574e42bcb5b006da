"""The effects table's PostgreSQL: scripts/postgres on its own port and run dir (bench/postgres.py
drives it), a fresh database per run with the stock filled, what the run left in it, and the
server's CPU from /proc."""

import math
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.postgres import LocalPostgres, PostgresError, fill_stock, with_database
from bench.throughput.harness import ROOT

PORT = 20532
RUN_DIR = ROOT / ".cache" / "bench-postgres"
TICKS = os.sysconf("SC_CLK_TCK")


class Unavailable(Exception):
    """The bench's PostgreSQL could not be started here; the message says why."""


@contextmanager
def local_postgres() -> Iterator[str]:
    """A fresh server on 127.0.0.1:20532 (run dir .cache/bench-postgres), taken down after: the URL of
    its `orders` database. Unavailable when it cannot start."""
    server = LocalPostgres(port=PORT, run_dir=RUN_DIR)
    try:
        try:
            server.down()
            url = server.up()
        except PostgresError as failed:
            raise Unavailable(str(failed)) from None
        yield url
    finally:
        try:
            server.down()
        except PostgresError as failed:
            print(failed, flush=True)


async def fresh_database(server_url: str, name: str, stock: dict[str, int]) -> str:
    """A new database `name` with the stock processor's tables and `stock` in them; its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(server_url, name)
    await fill_stock(url, stock)
    return url


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def stock_for(demand: Counter[str], share: float) -> dict[str, int]:
    """`share` of each SKU's demand, rounded up: most orders get their stock, the last ones of a SKU
    may not."""
    return {sku: math.ceil(wanted * share) for sku, wanted in demand.items()}


@dataclass(frozen=True)
class Ledger:
    """What a run left in its database."""

    rows: int
    inputs: int  # distinct (topic, partition, offset)
    orders: int  # distinct order ids
    accepted: list[str]  # order ids of the rows with status processed
    inbox_rows: int | None
    units_left: int


async def read_ledger(url: str, inbox_table: str | None) -> Ledger:
    conn = await asyncpg.connect(url)
    try:
        rows, inputs, orders = await conn.fetchrow(
            """SELECT count(*), count(DISTINCT (input_topic, input_partition, input_offset)),
                      count(DISTINCT order_id) FROM order_ledger"""
        )
        accepted = [
            r[0] for r in await conn.fetch("SELECT order_id FROM order_ledger WHERE status = 'processed'")
        ]
        inbox = await conn.fetchval(f"SELECT count(*) FROM {inbox_table}") if inbox_table else None
        units_left = await conn.fetchval("SELECT coalesce(sum(available), 0) FROM stock")
    finally:
        await conn.close()
    return Ledger(rows, inputs, orders, accepted, inbox, units_left)


def _server_pid() -> int:
    return int((RUN_DIR / "data" / "postmaster.pid").read_text().split()[0])


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_cpu_seconds() -> float:
    """User + system CPU seconds of the server so far: the postmaster's with its exited children's
    (backends that closed), and those of its children alive now (backends, WAL writer, checkpointer)."""
    postmaster = _server_pid()
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(entry.name)
        except OSError:
            continue
        if int(child[1]) == postmaster:
            total += int(child[11]) + int(child[12])
    return total / TICKS
