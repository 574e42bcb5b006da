# ruff: noqa: S608 - the only interpolated name is the table, checked by `Inbox` to be an identifier
"""The inbox table: one row per processed input record, keyed by its coordinates, with its outcome.

Written in the same transaction as the record's effects, it is what makes them exactly once: a
record whose coordinates are in it was processed and committed, whatever happened to its offset
commit or its outputs afterwards, and its stored outcome is published again instead.
"""

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

logger = logging.getLogger(__name__)
# group, topic, partition, offset: where a record was read, by which consumer group.
Coordinates = tuple[str, str, int, int]
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?")
# Rows deleted per statement by `purge`: a short transaction each, however old the backlog.
PURGE_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class Inbox:
    """SQL of the inbox table `table` (optionally schema-qualified, lower case).

    Rows carry `processed_at`; a BRIN index on it keeps `purge` cheap, as rows are appended in time
    order, for ~1/1000 the size of a B-tree.
    """

    table: str

    def __post_init__(self) -> None:
        if not _IDENTIFIER.fullmatch(self.table):
            raise ValueError(f"{self.table!r} is not a plain lower-case table name ([schema.]name)")

    async def create(self, conn: "asyncpg.Connection[Any]") -> None:
        """Create the table and its index when missing; safe to run from several instances at once."""
        index = self.table.replace(".", "_") + "_processed_at"
        # Two instances starting together may both find the table missing: the lock makes the second
        # wait for the first instead of failing on the catalog's unique key.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.table)
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.table} (
                    group_id text NOT NULL,
                    input_topic text NOT NULL,
                    input_partition integer NOT NULL,
                    input_offset bigint NOT NULL,
                    outcome bytea NOT NULL,
                    processed_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (group_id, input_topic, input_partition, input_offset)
                )"""
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {index} ON {self.table} USING brin (processed_at)"
            )

    async def lookup(
        self, conn: "asyncpg.Connection[Any]", coordinates: Sequence[Coordinates]
    ) -> dict[Coordinates, bytes]:
        """The stored outcome of each of `coordinates` already in the inbox (usually none)."""
        groups, topics, partitions, offsets = zip(*coordinates, strict=True)
        rows = await conn.fetch(
            f"""SELECT i.group_id, i.input_topic, i.input_partition, i.input_offset, i.outcome
                FROM {self.table} i
                JOIN unnest($1::text[], $2::text[], $3::integer[], $4::bigint[])
                  AS c(group_id, input_topic, input_partition, input_offset)
                USING (group_id, input_topic, input_partition, input_offset)""",
            groups,
            topics,
            partitions,
            offsets,
        )
        return {(r[0], r[1], r[2], r[3]): r[4] for r in rows}

    async def store(self, conn: "asyncpg.Connection[Any]", outcomes: Mapping[Coordinates, bytes]) -> None:
        """Insert one row per record. A concurrent transaction that stored one of them first (two
        instances on one partition across a rebalance) makes this fail on the primary key after it
        commits, and the whole batch is retried: its lookup then finds the row."""
        groups, topics, partitions, offsets = zip(*outcomes, strict=True)
        await conn.execute(
            f"""INSERT INTO {self.table} (group_id, input_topic, input_partition, input_offset, outcome)
                SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::bytea[])""",
            groups,
            topics,
            partitions,
            offsets,
            list(outcomes.values()),
        )

    async def purge(self, conn: "asyncpg.Connection[Any]", older_than_s: float) -> int:
        """Delete rows processed more than `older_than_s` ago, a chunk per statement; the count."""
        deleted = 0
        while True:
            status = await conn.execute(
                f"""DELETE FROM {self.table} WHERE ctid = ANY(ARRAY(
                        SELECT ctid FROM {self.table}
                        WHERE processed_at < now() - make_interval(secs => $1) LIMIT {PURGE_CHUNK}))""",
                older_than_s,
            )
            count = int(status.rsplit(" ", 1)[-1])
            deleted += count
            if count < PURGE_CHUNK:
                return deleted

    async def retain(self, pool: "asyncpg.Pool[Any]", *, retention_s: float, every_s: float) -> None:
        """Purge rows older than `retention_s` every `every_s`, until cancelled; a failure is logged
        and tried again next time."""
        while True:
            try:
                async with pool.acquire() as conn:
                    if deleted := await self.purge(conn, retention_s):
                        logger.info("inbox: deleted %d row(s) older than %g s", deleted, retention_s)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                logger.warning("inbox: purge failed: %s", type(exc).__name__)
            await asyncio.sleep(every_s)

    async def rows(self, conn: "asyncpg.Connection[Any]", group: str) -> dict[Coordinates, bytes]:
        """Every row of `group`: what `verify --effects` compares with the topics."""
        records = await conn.fetch(
            f"""SELECT group_id, input_topic, input_partition, input_offset, outcome
                FROM {self.table} WHERE group_id = $1""",
            group,
        )
        return {(r[0], r[1], r[2], r[3]): r[4] for r in records}
