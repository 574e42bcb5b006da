"""A PostgreSQL of these tests' own, to SIGKILL and start again while other tests go on.

The crash and outage tests of effects kill the database server. On the tests' shared server
(tests/support/postgres.py) that would break whatever the other half of `make test` runs on it at
that moment, so these tests get their own: `scripts/postgres` on 127.0.0.1:25442, data in
.cache/postgres-faults, up for this directory's tests and taken down after. Because the port and
the run folder are fixed, `scripts/test` runs this directory in its one-at-a-time half.
"""

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from bench.postgres import LocalPostgres, PostgresError

from tests.support import postgres
from tests.support.servers import serving

PORT = 25442


@pytest.fixture(scope="package")
def own_postgres(pytestconfig: pytest.Config) -> Iterator[LocalPostgres]:
    server = LocalPostgres(port=PORT, run_dir=postgres.ROOT / ".cache" / "postgres-faults", up_timeout=30)
    with serving(server.up, server.down, PostgresError, "the faults' own PostgreSQL"):
        yield server


@pytest.fixture
async def own_database_url(own_postgres: LocalPostgres) -> AsyncIterator[str]:
    """A fresh empty database on `own_postgres`, dropped after the test (the server started again
    first when the test left it killed)."""
    server_url = own_postgres.database_url("orders")
    name = postgres.unique_database()
    url = await postgres.create_database(server_url, name)
    try:
        yield url
    finally:
        if not own_postgres.running():
            own_postgres.start()
        try:
            await postgres.drop_database(server_url, name)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            print(f"could not drop {name}: {exc!r}")
