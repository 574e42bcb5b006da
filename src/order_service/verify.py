"""`order-service verify`: prove that every order on the input topic has exactly one outcome.

Reads the input, output, dead-letter (and, when it exists, retry) topics with `read_committed` up to
their end offsets at start, matches each outcome to its input by its provenance headers and reports
missing, duplicate, unmatched and out-of-order outcomes (docs/delivery-guarantees.md, "Verifying").

Exit status: 0 every input in range has exactly one outcome, in order; 1 violations found;
2 could not check (Kafka unreachable or not answering, a topic missing, invalid settings or options).
"""

import argparse
import asyncio
import json
import logging
import math
import socket
import ssl
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from order_service.adapters.connection import client_kwargs
from order_service.messaging.reconcile import (
    CannotConnect,
    CannotRead,
    Report,
    Selection,
    Topics,
    read_and_reconcile,
)
from order_service.settings import ConfigurationError, Settings, load_settings

PROG = "order-service verify"
CLEAN, VIOLATIONS, CANNOT_CHECK = 0, 1, 2
DEFAULT_TIMEOUT = 30.0
DEFAULT_LISTED = 10


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(CANNOT_CHECK, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _offset(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an offset: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"an offset is not negative: {text!r}")
    return value


def _utc(text: str) -> datetime:
    """An ISO-8601 date or date and time; without a timezone, UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Check that every input record has exactly one outcome (an output or a dead "
        "letter), in input order. Topics and connection come from the ORDER_SERVICE_* settings.",
        epilog="exit status: 0 clean, 1 violations found, 2 could not check",
    )
    p.add_argument(
        "--from-offset", type=_offset, metavar="N", help="first input offset checked, per partition"
    )
    p.add_argument(
        "--to-offset", type=_offset, metavar="N", help="last input offset checked (included), per partition"
    )
    p.add_argument(
        "--since",
        type=_utc,
        metavar="TIME",
        help="check inputs from the first record at or after TIME, per partition "
        "(ISO-8601; without a timezone, UTC)",
    )
    p.add_argument(
        "--until",
        type=_utc,
        metavar="TIME",
        help="check inputs before the first record at or after TIME, per partition (leave out the newest "
        "inputs of a running service, which may have no outcome yet)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="report duplicate outcomes without failing "
        "(at-least-once mode may repeat outputs after a crash)",
    )
    p.add_argument(
        "--list",
        type=int,
        default=DEFAULT_LISTED,
        metavar="N",
        help="offending records listed per kind (default: %(default)s); the counts cover all",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="bounds connecting, each metadata or offsets request, and each fetch that makes no "
        "progress; then exit 2 (default: %(default)g)",
    )
    return p


# --- aiokafka's connection errors: the cause for the one line, not a log line each ------------------


class _ConnectionErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.causes: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        # e.g. 'Unable connect to "%s:%s": %s' % (host, port, OSError(...))
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and isinstance(args[-1], BaseException):
            self.causes[":".join(str(a) for a in args[:-1])] = _describe(args[-1])

    def summary(self) -> str:
        return "; ".join(f"{where}: {cause}" for where, cause in self.causes.items())


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, TimeoutError):
        return "no answer"
    text = str(error) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


@contextmanager
def _quiet_aiokafka() -> Iterator[_ConnectionErrors]:
    log = logging.getLogger("aiokafka")
    errors = _ConnectionErrors()
    propagate = log.propagate
    log.addHandler(errors)
    log.propagate = False
    try:
        yield errors
    finally:
        log.removeHandler(errors)
        log.propagate = propagate


# --- the command -----------------------------------------------------------------------------------


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


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: returns when clean, otherwise exits 1 (violations) or 2 (could not check)."""
    args = parser().parse_args(argv)
    if args.from_offset is not None and args.to_offset is not None and args.from_offset > args.to_offset:
        _cannot_check(args, "--from-offset is after --to-offset")
    if args.since is not None and args.until is not None and args.since >= args.until:
        _cannot_check(args, "--since is not before --until")
    try:
        settings = load_settings()
        client_kwargs(settings.kafka)  # certificate files that do not load fail here, in one line
    except ConfigurationError as exc:
        _cannot_check(args, str(exc))
    bootstrap = ",".join(settings.kafka.bootstrap_servers)
    started = time.monotonic()
    with _quiet_aiokafka() as connection_errors:
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
        print(json.dumps(_as_json(settings, args, report, code, elapsed)))
    else:
        print(_summary(settings, args, report, violations, elapsed))
    if code != CLEAN:
        raise SystemExit(code)


def _cannot_check(args: argparse.Namespace, reason: str) -> NoReturn:
    line = " ".join(reason.split())  # one line, whatever the cause's text holds
    if args.json:
        print(json.dumps({"result": "error", "exit_code": CANNOT_CHECK, "error": line}))
    print(f"{PROG}: cannot check: {line}", file=sys.stderr)
    raise SystemExit(CANNOT_CHECK)


def _as_json(
    settings: Settings, args: argparse.Namespace, report: Report, code: int, elapsed: float
) -> dict[str, Any]:
    topics = _topics(settings)
    return {
        "result": "clean" if code == CLEAN else "violations",
        "exit_code": code,
        "topics": {
            "input": topics.input,
            "output": topics.output,
            "dead_letter": topics.dead_letter,
            "retry": topics.retry if report.retry_topic_read else None,
        },
        "selection": {
            "from_offset": args.from_offset,
            "to_offset": args.to_offset,
            "since": args.since.isoformat() if args.since else None,
            "until": args.until.isoformat() if args.until else None,
            "allow_duplicates": args.allow_duplicates,
        },
        **report.as_dict(),
        "elapsed_s": round(elapsed, 3),
    }


def _summary(
    settings: Settings, args: argparse.Namespace, report: Report, violations: int, elapsed: float
) -> str:
    topics = _topics(settings)
    offsets = sum(end - start for start, end in report.ranges.values())
    scope = []
    if args.from_offset is not None or args.to_offset is not None:
        scope.append(f"offsets {args.from_offset or 0}..{'' if args.to_offset is None else args.to_offset}")
    if args.since is not None or args.until is not None:
        since = args.since.isoformat() if args.since else ""
        until = args.until.isoformat() if args.until else ""
        scope.append(f"times {since}..{until}")
    retry = f", retry topic {topics.retry}" if report.retry_topic_read else ""
    lines = [
        f"verified {topics.input} -> {topics.output} | {topics.dead_letter}{retry}",
        f"  {len(report.ranges)} input partitions, {offsets} offsets in range"
        + (f" ({'; '.join(scope)})" if scope else " (all)"),
        "",
    ]
    duplicates_note = "allowed (--allow-duplicates)" if args.allow_duplicates else ""
    rows = [
        ("inputs", report.inputs, ""),
        ("processed", report.processed, "with an output"),
        ("dead-lettered", report.dead_lettered, "with a dead letter"),
        ("retried", report.retried, "went through the retry topic: exempt from the order check"),
        ("missing", report.missing, "no outcome"),
        ("duplicates", report.duplicates, duplicates_note or "more than one outcome"),
        ("unmatched", report.unmatched, "outcomes naming an input offset in range that was not read"),
        ("order violations", report.order_violations, "outcomes behind a later input's"),
        ("outside the range", report.outside_range, "information: outcomes of inputs not checked"),
        ("no provenance", report.unattributed, "information: outcomes naming no input"),
    ]
    lines += [f"  {name:<18}{count:>10}   {note}".rstrip() for name, count, note in rows]

    def section(title: str, count: int, entries: Sequence[str]) -> None:
        if count:
            shown = f" (first {len(entries)} of {count})" if len(entries) < count else ""
            lines.extend(["", f"{title}{shown}:", *(f"  {e}" for e in entries)])

    section("missing outcomes", report.missing, [f"input {ref}" for ref in report.missing_list])
    section(
        "duplicate outcomes",
        report.duplicates,
        [f"input {d.input}: {', '.join(map(str, d.outcomes))}" for d in report.duplicate_list],
    )
    section(
        "unmatched outcomes",
        report.unmatched,
        [
            f"{', '.join(map(str, u.outcomes))} name input {u.input}, not on the log"
            for u in report.unmatched_list
        ],
    )
    section(
        "order violations",
        report.order_violations,
        [
            f"{v.outcome} (input {v.input}) comes after the outcome of input offset {v.after_offset}"
            for v in report.order_violation_list
        ],
    )
    section(
        "outside the range (information)",
        report.outside_range,
        [f"{s.outcome} names input {s.input}" for s in report.outside_range_list],
    )
    section(
        "no provenance (information)", report.unattributed, [str(s.outcome) for s in report.unattributed_list]
    )
    read = report.inputs + report.outputs_read + report.dead_letters_read + report.retry_hops_read
    lines += ["", f"read {read} records in {elapsed:.1f}s"]
    if violations:
        lines.append(f"VIOLATIONS: {violations} finding(s) break exactly-one-outcome-in-order")
        if report.missing:
            lines.append(
                "  (a running service may not have handled the newest inputs yet: --until leaves them out)"
            )
    else:
        lines.append("OK: every input in range has exactly one outcome, in input order")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
