"""scripts/postgres as the tests use it: a URL that connects, a password that counts, data that
survives a SIGKILL, and status exit codes."""

import os
import socket
import subprocess
from collections.abc import Iterator

import asyncpg
import pytest
from bench.postgres import PostgresError

from tests.support import postgres
from tests.support.postgres import (
    connect,
    kill_postgres,
    postgres_status,
    run_script,
    start_postgres,
    stop_postgres,
    with_database,
)


@pytest.fixture
def own_server(postgres_server: str) -> Iterator[str]:
    """The `postgres_server` of scripts/postgres (a test here stops or kills it), running again after."""
    if postgres.external_url():
        pytest.skip("checks scripts/postgres, not the server of POSTGRES_URL")
    try:
        yield postgres_server
    finally:
        if postgres_status()[0] != 0:
            start_postgres()


async def test_up_prints_the_url_of_a_server_that_answers(own_server: str) -> None:
    assert own_server == f"postgresql://postgres:postgres@127.0.0.1:{postgres.PORT}/orders"
    connection = await connect(own_server)
    try:
        assert await connection.fetchval("SELECT 1") == 1
        assert await connection.fetchval("SELECT current_database()") == "orders"
        assert await connection.fetchval("SHOW fsync") == "on"
    finally:
        await connection.close()
    # Again: the same server, the URL again as the last line.
    pid = postgres_status()[1]
    assert postgres.up_postgres() == own_server
    assert postgres_status() == (0, pid)


async def test_a_wrong_password_is_refused(postgres_server: str) -> None:
    wrong = postgres_server.replace("postgres:postgres@", "postgres:wrong@", 1)
    assert wrong != postgres_server
    with pytest.raises(asyncpg.InvalidPasswordError):
        await connect(wrong)


async def test_database_url_is_a_fresh_database(postgres_server: str, database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    assert database_url == with_database(postgres_server, name)
    assert name != "orders"
    connection = await connect(database_url)
    try:
        assert await connection.fetchval("SELECT current_database()") == name
        assert await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await connection.close()


async def test_a_committed_row_survives_kill_and_start(own_server: str, database_url: str) -> None:
    connection = await connect(database_url)
    try:
        await connection.execute("CREATE TABLE orders (id text PRIMARY KEY)")
        await connection.execute("INSERT INTO orders VALUES ('committed')")
        # Open when the server dies: rolled back by the crash recovery.
        transaction = connection.transaction()
        await transaction.start()
        await connection.execute("INSERT INTO orders VALUES ('open')")

        kill_postgres()
        code, line = postgres_status()
        assert (code, line.split(" ")[0]) == (1, "stopped"), line
        with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
            await connect(database_url, timeout=3)
    finally:
        connection.terminate()  # its server is gone

    start_postgres()
    code, line = postgres_status()
    assert (code, line.split(" ")[0]) == (0, "running"), line
    connection = await connect(database_url)
    try:
        assert await connection.fetch("SELECT id FROM orders") == [("committed",)]
    finally:
        await connection.close()


async def test_stop_start_and_status_exit_codes(own_server: str) -> None:
    assert postgres_status()[0] == 0
    stop_postgres()
    code, line = postgres_status()
    assert (code, line.split(" ")[0]) == (1, "stopped"), line
    stop_postgres()  # again: nothing to stop, still fine
    start_postgres()
    code, line = postgres_status()
    assert code == 0
    assert line.startswith("running (pid "), line
    assert f"port {postgres.PORT}" in line, line
    start_postgres()  # again: already running, still fine
    connection = await connect(own_server)
    try:
        assert await connection.fetchval("SELECT 1") == 1
    finally:
        await connection.close()


def test_up_refuses_a_port_that_another_process_holds(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One line naming PG_PORT, before anything is installed or created."""
    holder = socket.socket()
    try:
        # Not an ephemeral port (the script refuses those), and not the test server's.
        for port in range(postgres.PORT + 1, postgres.PORT + 100):
            try:
                holder.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        holder.listen()
        run_dir = tmp_path_factory.mktemp("postgres") / "run"
        done = subprocess.run(
            [str(postgres.SCRIPT), "up"],
            env={**os.environ, "PG_PORT": str(port), "PG_RUN_DIR": str(run_dir)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        holder.close()
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"port {port} is already in use" in done.stderr, done.stderr
    assert "PG_PORT" in done.stderr, done.stderr
    assert not run_dir.exists()


def test_status_without_a_cluster_exits_1(tmp_path_factory: pytest.TempPathFactory) -> None:
    run_dir = tmp_path_factory.mktemp("postgres") / "none"
    done = subprocess.run(
        [str(postgres.SCRIPT), "status"],
        env={**os.environ, "PG_PORT": str(postgres.PORT + 100), "PG_RUN_DIR": str(run_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (1, f"not running (no cluster in {run_dir})")


def test_run_script_reports_failures() -> None:
    with pytest.raises(PostgresError, match="exit 2"):
        run_script("no-such-command", timeout=30)
