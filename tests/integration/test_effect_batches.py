"""kafka_delivery.effects against a real PostgreSQL: records' work in shared transactions, the inbox,
a record that fails alone, two instances on the same records, retention."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from kafka_delivery.effects import EffectBatches, Inbox, connect_pool, coordinates, transaction

TABLE = "test_inbox"


@pytest.fixture
async def effects(database_url: str) -> AsyncIterator[EffectBatches]:
    batches = make_batches(database_url)
    await batches.start()
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TABLE effect (n integer NOT NULL, offset_ bigint NOT NULL)")
    await conn.close()
    yield batches
    await batches.close()


def make_batches(url: str, *, inbox: bool = True) -> EffectBatches:
    return EffectBatches(
        lambda: connect_pool(url, timeout_s=10, statement_timeout_s=10),
        inbox=Inbox(TABLE) if inbox else None,
        max_batch=50,
    )


def writing(n: int) -> Callable[[], Awaitable[bytes]]:
    async def work() -> bytes:
        _group, _topic, _partition, offset = coordinates()
        await transaction().execute("INSERT INTO effect VALUES ($1, $2)", n, offset)
        return f"outcome-{n}".encode()

    return work


async def effect_rows(url: str) -> list[tuple[int, int]]:
    conn = await asyncpg.connect(url)
    try:
        return [(r["n"], r["offset_"]) for r in await conn.fetch("SELECT n, offset_ FROM effect ORDER BY n")]
    finally:
        await conn.close()


async def test_records_share_transactions_and_a_record_processed_again_returns_its_stored_outcome(
    effects: EffectBatches, database_url: str
) -> None:
    outcomes = await asyncio.gather(*(effects.run(("g", "t", 0, i), writing(i)) for i in range(200)))
    assert outcomes == [f"outcome-{i}".encode() for i in range(200)]
    assert effects.batches < 200 / 4, f"{effects.batches} transactions for 200 records"

    async def must_not_run() -> bytes:
        raise AssertionError("a record in the inbox is not worked again")

    again = await asyncio.gather(*(effects.run(("g", "t", 0, i), must_not_run) for i in range(200)))
    assert again == outcomes
    assert await effect_rows(database_url) == [(i, i) for i in range(200)]


async def test_a_record_whose_work_raises_fails_alone_and_leaves_no_effect(
    effects: EffectBatches, database_url: str
) -> None:
    async def violating() -> bytes:
        await transaction().execute("INSERT INTO effect VALUES (NULL, 0)")  # NOT NULL
        return b"never"

    runs = [effects.run(("g", "t", 1, i), writing(i) if i != 7 else violating) for i in range(20)]
    results = await asyncio.gather(*runs, return_exceptions=True)
    assert isinstance(results[7], asyncpg.NotNullViolationError)
    assert [r for i, r in enumerate(results) if i != 7] == [
        f"outcome-{i}".encode() for i in range(20) if i != 7
    ]
    assert await effect_rows(database_url) == [(i, i) for i in range(20) if i != 7]
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE input_offset = 7")
    finally:
        await conn.close()
    assert stored == 0, "a failed record has no inbox row: processed again, it runs again"


async def test_two_instances_on_the_same_records_commit_each_effect_once(database_url: str) -> None:
    first, second = make_batches(database_url), make_batches(database_url)
    await first.start()
    await second.start()
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TABLE effect (n integer NOT NULL, offset_ bigint NOT NULL)")
    await conn.close()
    try:
        # Across a rebalance, a zombie and the new owner may work the same offsets at once.
        runs = [b.run(("g", "t", 2, i), writing(i)) for i in range(300) for b in (first, second)]
        results = await asyncio.gather(*runs)
    finally:
        await first.close()
        await second.close()
    assert results == [f"outcome-{i}".encode() for i in range(300) for _ in range(2)]
    assert await effect_rows(database_url) == [(i, i) for i in range(300)]


async def test_without_an_inbox_a_record_processed_again_repeats_its_effects(database_url: str) -> None:
    batches = make_batches(database_url, inbox=False)
    await batches.start()
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TABLE effect (n integer NOT NULL, offset_ bigint NOT NULL)")
    await conn.close()
    try:
        for _ in range(2):
            await batches.run(("g", "t", 0, 5), writing(5))
    finally:
        await batches.close()
    assert await effect_rows(database_url) == [(5, 5), (5, 5)]


async def test_rows_past_the_retention_are_purged(effects: EffectBatches, database_url: str) -> None:
    await asyncio.gather(*(effects.run(("g", "t", 0, i), writing(i)) for i in range(30)))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f"UPDATE {TABLE} SET processed_at = now() - interval '2 hours' WHERE input_offset < 10"
        )
        assert await Inbox(TABLE).purge(conn, older_than_s=3600) == 10
        assert await conn.fetchval(f"SELECT count(*) FROM {TABLE}") == 20
    finally:
        await conn.close()


def test_the_transaction_and_coordinates_exist_only_inside_a_records_work() -> None:
    with pytest.raises(LookupError):
        transaction()
    with pytest.raises(LookupError):
        coordinates()


async def test_a_processors_own_timeout_fails_its_record_and_is_no_database_outage(
    effects: EffectBatches, database_url: str
) -> None:
    async def http_call_timing_out() -> bytes:
        await transaction().execute("INSERT INTO effect VALUES (99, 99)")
        raise TimeoutError("pricing service did not answer")

    runs = [effects.run(("g", "t", 3, i), writing(i) if i != 3 else http_call_timing_out) for i in range(6)]
    results = await asyncio.gather(*runs, return_exceptions=True)
    assert isinstance(results[3], TimeoutError)
    assert effects.problem() is None, "not reported as the database's"
    assert await effect_rows(database_url) == [(i, i) for i in range(6) if i != 3]
