"""`order-service verify`: prove that every order on the input topic has exactly one outcome.

Reads the input, output, dead-letter (and, when it exists, retry) topics with `read_committed` up to
their end offsets at start, matches each outcome to its input by its provenance headers and reports
missing, duplicate, unmatched and out-of-order outcomes (docs/delivery-guarantees.md, "Verifying").
Its options are in verify_options.py, what it prints in verify_output.py.

Exit status: 0 every input in range has exactly one outcome, in order; 1 violations found;
2 could not check (Kafka unreachable or not answering, a topic missing, invalid settings or options).

Run it as `python -m order_service.cli.verify`.
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kafka_delivery.logs import connection_errors, tame_aiokafka
from kafka_delivery.tools import CannotConnect, CannotRead, Report, Selection, Topics, read_and_reconcile
from order_service.adapters.connection import client_kwargs
from order_service.cli.verify_options import CANNOT_CHECK, CLEAN, PROG, VIOLATIONS, inconsistency, parser
from order_service.cli.verify_output import as_json, summary
from order_service.settings import ConfigurationError, Settings, load_settings


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _topics(settings: Settings) -> Topics:
    t = settings.topics
    return Topics(input=t.input, output=t.output, dead_letter=t.dead_letter, retry=t.retry)


async def _check(settings: Settings, args: argparse.Namespace, console: Console) -> Report:
    selection = Selection(
        from_offset=args.from_offset,
        to_offset=args.to_offset,
        since_ms=_ms(args.since),
        until_ms=_ms(args.until),
    )
    columns = (
        TextColumn("reading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("offsets"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=True) as bar:
        task = bar.add_task("verify", total=None)
        return await read_and_reconcile(
            client_kwargs(settings.kafka),
            _topics(settings),
            selection=selection,
            timeout=args.timeout,
            listed=max(0, args.list),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


# The entry point of `order-service verify` (to be wired into the typer CLI, handing it the raw
# arguments) and of `python -m order_service.cli.verify`.
def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: returns when clean, otherwise exits 1 (violations) or 2 (could not check)."""
    args = parser().parse_args(argv)
    if (contradiction := inconsistency(args)) is not None:
        _cannot_check(args, contradiction)
    try:
        settings = load_settings()
        client_kwargs(settings.kafka)  # certificate files that do not load fail here, in one line
    except ConfigurationError as exc:
        _cannot_check(args, str(exc))
    bootstrap = ",".join(settings.kafka.bootstrap_servers)
    started = time.monotonic()
    tame_aiokafka()
    try:
        report = asyncio.run(_check(settings, args, Console(stderr=True)))
    except CannotConnect as exc:
        known = connection_errors.summary()
        cause = f"cannot connect ({known})" if known else str(exc)
        _cannot_check(args, f"Kafka at {bootstrap}: {cause}")
    except CannotRead as exc:
        known = connection_errors.summary()
        _cannot_check(args, f"Kafka at {bootstrap}: {exc}" + (f" ({known})" if known else ""))
    except KeyboardInterrupt:
        _cannot_check(args, "interrupted")
    elapsed = time.monotonic() - started
    violations = report.violations(allow_duplicates=args.allow_duplicates)
    code = VIOLATIONS if violations else CLEAN
    if args.json:
        print(json.dumps(as_json(_topics(settings), args, report, code, elapsed)))
    else:
        print(summary(_topics(settings), args, report, violations, elapsed))
    if code != CLEAN:
        raise SystemExit(code)


def _cannot_check(args: argparse.Namespace, reason: str) -> NoReturn:
    line = " ".join(reason.split())  # one line, whatever the cause's text holds
    if args.json:
        print(json.dumps({"result": "error", "exit_code": CANNOT_CHECK, "error": line}))
    print(f"{PROG}: cannot check: {line}", file=sys.stderr)
    raise SystemExit(CANNOT_CHECK)


if __name__ == "__main__":
    main()
