"""Which errors mean "the database is unavailable" (retried, never dead-lettered), and what an error
may name of the database URL."""

import asyncpg
import pytest

from kafka_delivery.effects import Inbox, unavailable
from kafka_delivery.effects.database import where


def postgres_error(sqlstate: str) -> asyncpg.PostgresError:
    """The asyncpg exception class PostgreSQL's SQLSTATE maps to, as the driver raises it."""
    error_class = asyncpg.PostgresError.get_message_class_for_sqlstate(sqlstate)
    error: asyncpg.PostgresError = error_class.new({"C": sqlstate, "M": "server said so"})
    return error


@pytest.mark.parametrize(
    "sqlstate",
    [
        "08006",  # connection_failure
        "57P01",  # admin_shutdown: a restart or a failover
        "53300",  # too_many_connections
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "25006",  # read_only_sql_transaction: a standby after a failover
        "55P03",  # lock_not_available
        "57014",  # query_canceled: the statement timeout
    ],
)
def test_errors_of_the_server_or_its_connection_are_unavailability(sqlstate: str) -> None:
    assert unavailable(postgres_error(sqlstate))


@pytest.mark.parametrize(
    "sqlstate",
    [
        "23505",  # unique_violation raised by the processor's own table
        "23514",  # check_violation
        "22003",  # numeric_value_out_of_range
        "42P01",  # undefined_table in the processor's SQL
        "42601",  # syntax_error
    ],
)
def test_a_processors_data_and_sql_errors_are_its_records_own(sqlstate: str) -> None:
    assert not unavailable(postgres_error(sqlstate))


def test_lost_connections_are_unavailability_and_bugs_are_not() -> None:
    assert unavailable(ConnectionRefusedError(111, "refused"), connection_lost=True)
    assert unavailable(TimeoutError(), connection_lost=True)
    assert unavailable(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"))
    assert unavailable(asyncpg.InterfaceError("connection is closed"))
    assert not unavailable(ValueError("bad order"))
    assert not unavailable(KeyError("sku"))


def test_a_timeout_or_connection_error_while_the_connection_is_open_is_the_records_own() -> None:
    """A processor's HTTP call timing out is not the database's failure: the record is retried and
    dead-lettered as any processing error, instead of holding every key back as an outage would."""
    assert not unavailable(TimeoutError(), connection_lost=False)
    assert not unavailable(ConnectionError("pricing service unreachable"), connection_lost=False)
    assert unavailable(asyncpg.InterfaceError("connection is closed"), connection_lost=False)


def test_errors_name_the_database_without_user_or_password() -> None:
    assert where("postgresql://app:s3cret@db.internal:6432/orders") == "db.internal:6432/orders"
    assert where("postgres://app:s3cret@db/orders") == "db:5432/orders"


@pytest.mark.parametrize("table", ["inbox", "effects.inbox", "order_service_inbox_2"])
def test_an_inbox_table_is_a_plain_name(table: str) -> None:
    assert Inbox(table).table == table


@pytest.mark.parametrize("table", ["Inbox", "inbox; DROP TABLE stock", "a.b.c", "1inbox", "in-box", ""])
def test_an_inbox_table_that_is_not_a_plain_name_is_refused(table: str) -> None:
    with pytest.raises(ValueError, match="not a plain lower-case table name"):
        Inbox(table)
