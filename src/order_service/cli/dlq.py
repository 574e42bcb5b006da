"""`order-service dlq list | show | replay`: inspect the dead-letter topic and re-drive its records, once."""

from datetime import datetime
from typing import Annotated, Any

import typer

from kafka_delivery.handlers import original_headers, read_envelope
from kafka_delivery.tools import DEFAULT_TIMEOUT, ReplayFilter
from order_service.cli import dlq_kafka
from order_service.cli.common import CommandFailed, positive, run, timeout_option, utc_datetime
from order_service.settings import Settings

app = typer.Typer(
    name="dlq",
    help="Inspect the dead-letter topic (ORDER_SERVICE_TOPICS__DEAD_LETTER) and re-drive its records, once.",
    no_args_is_help=True,
)


def per_second(text: str | float) -> float:
    """`--rate`'s type: a positive number of records per second."""
    return positive(text, "records per second")


@app.command("list")
def list_command(
    timeout: Annotated[
        float,
        timeout_option(
            "seconds to connect and read the dead-letter topic's offsets, then again for each fetch "
            "that makes no progress"
        ),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Count the dead letters by error category and type."""

    async def work(settings: Settings) -> None:
        counts = await dlq_kafka.list_counts(settings, timeout=timeout)
        print(f"{'category':<20} {'error type':<30} {'count':>8}")
        for (category, error_type), count in sorted(counts.items()):
            print(f"{category:<20} {error_type:<30} {count:>8}")
        print(f"{'total':<51} {sum(counts.values()):>8}")

    run(work, timeout=timeout)


_SHOW_TIMEOUT = "seconds to connect and read the partition's offsets, then again to fetch the record"


@app.command("show")
def show_command(
    partition: Annotated[
        int, typer.Option("--partition", min=0, metavar="N", help="the dead-letter topic's partition")
    ] = 0,
    offset: Annotated[
        int,
        typer.Option("--offset", min=0, metavar="OFFSET", help="the dead letter's offset in that partition"),
    ] = 0,
    timeout: Annotated[float, timeout_option(_SHOW_TIMEOUT)] = DEFAULT_TIMEOUT,
) -> None:
    """Print one dead letter: its key, envelope, other headers and value."""

    async def work(settings: Settings) -> None:
        record = await dlq_kafka.show(settings, partition=partition, offset=offset, timeout=timeout)
        if record is None:
            raise CommandFailed(
                f"no dead letter on {settings.topics.dead_letter} at partition {partition}, offset {offset}"
            )
        print(f"{record.topic}/{record.partition}/{record.offset} key={record.key!r}")
        for name, value in read_envelope(record.headers).items():
            print(f"  {name}: {value}")
        print(f"  headers: {original_headers(record.headers)}")
        print(f"  value: {record.value!r}")

    run(work, timeout=timeout)


WHEN = "ISO-8601, e.g. 2026-03-01 or 2026-03-01T12:00+02:00; without a timezone, UTC"


_SINCE = f"only those that failed at or after WHEN ({WHEN})"
_UNTIL = f"only those that failed before WHEN ({WHEN})"
_RATE = "send at most N records per second"
_REPLAY_TIMEOUT = (
    "seconds to connect and read the offsets, then again for each fetch that makes no progress, "
    "each record's ack and each offset commit"
)
Categories = Annotated[
    list[str] | None,
    typer.Option(
        "--category", metavar="CATEGORY", help="only this error category, e.g. validation; repeatable"
    ),
]
ErrorTypes = Annotated[
    list[str] | None,
    typer.Option(
        "--error-type", metavar="TYPE", help="only this error type, e.g. JSONDecodeError; repeatable"
    ),
]


def _when(flag: str, help_text: str) -> Any:
    return typer.Option(flag, parser=utc_datetime, metavar="WHEN", help=help_text)


def _offset(flag: str, which: str) -> Any:
    return typer.Option(flag, min=0, metavar="OFFSET", help=f"the {which} offset to consider, per partition")


@app.command("replay")
def replay_command(
    category: Categories = None,
    error_type: ErrorTypes = None,
    since: Annotated[datetime | None, _when("--since", _SINCE)] = None,
    until: Annotated[datetime | None, _when("--until", _UNTIL)] = None,
    from_offset: Annotated[int | None, _offset("--from-offset", "first")] = None,
    to_offset: Annotated[int | None, _offset("--to-offset", "last")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what would be sent; send and commit nothing")
    ] = False,
    rate: Annotated[float | None, typer.Option("--rate", parser=per_second, metavar="N", help=_RATE)] = None,
    force: Annotated[
        bool, typer.Option("--force", help="start over from the oldest, resending what was replayed")
    ] = False,
    timeout: Annotated[float, timeout_option(_REPLAY_TIMEOUT)] = DEFAULT_TIMEOUT,
) -> None:
    """Send dead letters back to their original topic, once: progress is kept in the replay group."""
    selection = ReplayFilter(
        categories=frozenset(category or ()),
        error_types=frozenset(error_type or ()),
        failed_after=since,
        failed_before=until,
        from_offset=from_offset,
        to_offset=to_offset,
    )

    async def work(settings: Settings) -> None:
        sent, scanned = await dlq_kafka.replay(
            settings, selection, dry_run=dry_run, rate=rate, force=force, timeout=timeout
        )
        print(f"{'would replay' if dry_run else 'replayed'} {sent} of {scanned} dead letters scanned")

    run(work, timeout=timeout)
