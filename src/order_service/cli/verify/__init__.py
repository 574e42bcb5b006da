"""`order-service verify`: prove that every order on the input topic has exactly one outcome.

Reads the input, output, dead-letter (and, when it exists, retry) topics with `read_committed` up to
their end offsets at start, matches each outcome to its input by its provenance headers and reports
missing, duplicate, unmatched and out-of-order outcomes (docs/delivery-guarantees.md, "Verifying").
With `--effects`, it also reads the effects inbox and reports processed inputs without an inbox
row, published outcomes that differ from the stored one, and inbox rows of inputs that were
dead-lettered or have nothing published.
What it prints is in output.py.

Exit status: 0 every input in range has exactly one outcome, in order; 1 violations found;
2 could not check (Kafka unreachable or not answering, a topic missing, invalid settings or options).
Unlike the other commands, a failure to check is 2, not 1: 1 means violations.

Also runs as `python -m order_service.cli.verify` (__main__.py).
"""

import asyncio
import json
import time
from datetime import datetime
from typing import Annotated, Any, NoReturn

import asyncpg
import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kafka_delivery.effects import Inbox
from kafka_delivery.errors import CannotConnect, KafkaUnreachable, MissingTopicsError
from kafka_delivery.tools import DEFAULT_TIMEOUT, InboxCheck, Report, Selection, Topics, read_and_reconcile
from order_service.adapters.connection import client_kwargs
from order_service.cli.common import PROG, configure_logging, seconds, utc_datetime
from order_service.cli.verify.output import CANNOT_CHECK, CLEAN, VIOLATIONS, Scope, as_json, summary
from order_service.settings import ENV_PREFIX, ConfigurationError, Settings, load_settings

DEFAULT_LISTED = 10
DATABASE_VARIABLE = f"{ENV_PREFIX}EFFECTS__DATABASE_URL"
EPILOG = "Exit status: 0 clean, 1 violations found, 2 could not check."


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _topics(settings: Settings) -> Topics:
    t = settings.topics
    return Topics(input=t.input, output=t.output, dead_letter=t.dead_letter, retry=t.retry)


async def _inbox_rows(settings: Settings, timeout: float) -> dict[tuple[str, int, int], bytes]:
    """The inbox rows of the input topic's group, keyed by input (topic, partition, offset)."""
    url = settings.effects.database_url
    if url is None:
        raise ConfigurationError(f"--effects needs {DATABASE_VARIABLE}")
    try:
        conn = await asyncpg.connect(url.get_secret_value(), timeout=timeout)
    except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError) as exc:
        raise EffectsUnreadable(f"the database refused the connection: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise EffectsUnreadable(
            f"cannot reach the database within {timeout:g}s: {type(exc).__name__}"
        ) from None
    try:
        rows = await asyncio.wait_for(
            Inbox(settings.effects.inbox_table).rows(conn, settings.consumer.group_id), timeout
        )
    except asyncpg.UndefinedTableError:
        raise EffectsUnreadable(f"there is no inbox table {settings.effects.inbox_table}") from None
    finally:
        await conn.close(timeout=timeout)
    return {(topic, partition, offset): outcome for (_, topic, partition, offset), outcome in rows.items()}


class EffectsUnreadable(Exception):
    """The inbox could not be read: the database refused, did not answer, or has no inbox table."""


async def _check(settings: Settings, scope: Scope, *, timeout: float, listed: int, effects: bool) -> Report:
    inbox = InboxCheck(await _inbox_rows(settings, timeout), listed=max(0, listed)) if effects else None
    selection = Selection(
        from_offset=scope.from_offset,
        to_offset=scope.to_offset,
        since_ms=_ms(scope.since),
        until_ms=_ms(scope.until),
    )
    columns = (
        TextColumn("reading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("offsets"),
        TimeElapsedColumn(),
    )
    console = Console(stderr=True)
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=True) as bar:
        task = bar.add_task("verify", total=None)
        return await read_and_reconcile(
            client_kwargs(settings.kafka),
            _topics(settings),
            selection=selection,
            timeout=timeout,
            listed=max(0, listed),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            inbox=inbox,
        )


def _inconsistency(scope: Scope) -> str | None:
    """What makes the options contradict each other, if anything."""
    if scope.from_offset is not None and scope.to_offset is not None and scope.from_offset > scope.to_offset:
        return "--from-offset is after --to-offset"
    if scope.since is not None and scope.until is not None and scope.since >= scope.until:
        return "--since is not before --until"
    return None


def _cannot_check(reason: str, *, as_json: bool) -> NoReturn:
    line = " ".join(reason.split())  # one line, whatever the cause's text holds
    if as_json:
        print(json.dumps({"result": "error", "exit_code": CANNOT_CHECK, "error": line}))
    typer.echo(f"{PROG} verify: cannot check: {line}", err=True)
    raise typer.Exit(CANNOT_CHECK)


def _offset(flag: str, help_text: str) -> Any:
    return typer.Option(flag, min=0, metavar="N", help=help_text, show_default=False)


def _time(flag: str, help_text: str) -> Any:
    return typer.Option(flag, parser=utc_datetime, metavar="TIME", help=help_text, show_default=False)


_SINCE = (
    "check inputs from the first record at or after TIME, per partition (ISO-8601; without a timezone, UTC)"
)
_UNTIL = (
    "check inputs before the first record at or after TIME, per partition (leave out the newest "
    "inputs of a running service, which may have no outcome yet)"
)
_DUPLICATES = (
    "report duplicate outcomes without failing (at-least-once mode may repeat outputs after a crash)"
)
_EFFECTS = (
    "also check the effects inbox (ORDER_SERVICE_EFFECTS__DATABASE_URL): one row per processed input, "
    "holding the outcome that was published"
)
_TIMEOUT = (
    "bounds connecting, each metadata or offsets request, and each fetch that makes no progress; then exit 2"
)


def command(
    from_offset: Annotated[
        int | None, _offset("--from-offset", "first input offset checked, per partition")
    ] = None,
    to_offset: Annotated[
        int | None, _offset("--to-offset", "last input offset checked (included), per partition")
    ] = None,
    since: Annotated[datetime | None, _time("--since", _SINCE)] = None,
    until: Annotated[datetime | None, _time("--until", _UNTIL)] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="print one JSON object instead of the summary")
    ] = False,
    allow_duplicates: Annotated[bool, typer.Option("--allow-duplicates", help=_DUPLICATES)] = False,
    listed: Annotated[
        int,
        typer.Option("--list", metavar="N", help="offending records listed per kind; the counts cover all"),
    ] = DEFAULT_LISTED,
    timeout: Annotated[
        float, typer.Option("--timeout", parser=seconds, metavar="SECONDS", help=_TIMEOUT)
    ] = DEFAULT_TIMEOUT,
    effects: Annotated[bool, typer.Option("--effects", help=_EFFECTS)] = False,
) -> None:
    """Check that every input record has exactly one outcome (an output or a dead letter), in input
    order. Topics and connection come from the ORDER_SERVICE_* settings."""
    scope = Scope(from_offset, to_offset, since, until, allow_duplicates, effects)
    if (contradiction := _inconsistency(scope)) is not None:
        _cannot_check(contradiction, as_json=json_output)
    try:
        settings = load_settings()
        configure_logging(settings)
        client_kwargs(settings.kafka)  # certificate files that do not load fail here, in one line
        topics = _topics(settings)
    except (ConfigurationError, ValueError) as exc:
        _cannot_check(str(exc), as_json=json_output)
    bootstrap = ",".join(settings.kafka.bootstrap_servers)
    started = time.monotonic()
    try:
        report = asyncio.run(_check(settings, scope, timeout=timeout, listed=listed, effects=effects))
    except ConfigurationError as exc:
        _cannot_check(str(exc), as_json=json_output)
    except EffectsUnreadable as exc:
        _cannot_check(f"{DATABASE_VARIABLE}: {exc}", as_json=json_output)
    except CannotConnect as exc:
        _cannot_check(f"Kafka at {bootstrap}: cannot connect ({exc})", as_json=json_output)
    except KafkaUnreachable as exc:
        _cannot_check(f"cannot reach Kafka at {bootstrap} within {timeout:g}s: {exc}", as_json=json_output)
    except MissingTopicsError as exc:
        _cannot_check(f"{exc} (Kafka at {bootstrap})", as_json=json_output)
    except KafkaError as exc:
        _cannot_check(f"Kafka at {bootstrap}: {exc!r}", as_json=json_output)
    except KeyboardInterrupt:
        _cannot_check("interrupted", as_json=json_output)
    elapsed = time.monotonic() - started
    violations = report.violations(allow_duplicates=allow_duplicates)
    code = VIOLATIONS if violations else CLEAN
    if json_output:
        print(json.dumps(as_json(topics, scope, report, code, elapsed)))
    else:
        print(summary(topics, scope, report, violations, elapsed))
    if code != CLEAN:
        raise typer.Exit(code)
