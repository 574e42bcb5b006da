"""`order-service verify`'s options (argparse): offsets, times, output, `--timeout`; usage errors exit 2."""

import argparse
from datetime import UTC, datetime
from typing import NoReturn

from order_service.cli.common import seconds

PROG = "order-service verify"
CLEAN, VIOLATIONS, CANNOT_CHECK = 0, 1, 2
DEFAULT_TIMEOUT = 30.0
DEFAULT_LISTED = 10


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(CANNOT_CHECK, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="bounds connecting, each metadata or offsets request, and each fetch that makes no "
        "progress; then exit 2 (default: %(default)g)",
    )
    return p


def inconsistency(args: argparse.Namespace) -> str | None:
    """What makes the options contradict each other, if anything."""
    if args.from_offset is not None and args.to_offset is not None and args.from_offset > args.to_offset:
        return "--from-offset is after --to-offset"
    if args.since is not None and args.until is not None and args.since >= args.until:
        return "--since is not before --until"
    return None
