"""`order-service dlq`: inspect the dead-letter topic and re-drive its records, once."""

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from order_service import cli
from order_service.adapters.connection import client_kwargs
from order_service.cli.progress import Progress
from order_service.messaging.envelope import read_envelope
from order_service.messaging.records import InputRecord
from order_service.messaging.redrive import ReplayFilter, replay_record
from order_service.settings import Settings


def replay_group(settings: Settings) -> str:
    return f"{settings.consumer.group_id}.dlq-replay"


async def _assign(
    consumer: AIOKafkaConsumer, topic: str, *, force: bool, until: float
) -> tuple[dict[TopicPartition, int], int]:
    """Assign every partition; returns the end offsets to stop at and how many records lie before them.

    Done by `until`; a missing topic raises `cli.CommandFailed`.
    """
    partitions = [
        TopicPartition(topic, p) for p in sorted(await cli.require_topic(consumer._client, topic, until))
    ]
    async with cli.bounded(f"reading the offsets of {topic}", until):
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if force:
            await consumer.seek_to_beginning(*partitions)
        total = 0
        for tp in partitions:
            total += max(0, ends[tp] - await consumer.position(tp))
    return ends, total


async def _fetch(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, list[InputRecord]]:
    """The next records of `partitions`; waits until there are some, or a position moved (past
    transaction markers, say). Unbounded: callers bound it."""
    partitions = list(partitions)
    before = [await consumer.position(tp) for tp in partitions]
    while True:
        batches: dict[TopicPartition, list[InputRecord]] = await consumer.getmany(
            *partitions, timeout_ms=1000
        )
        if batches or [await consumer.position(tp) for tp in partitions] != before:
            return batches


async def _scan(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], *, timeout: float
) -> AsyncIterator[InputRecord]:
    """Every record from the consumer's positions up to `ends`; `timeout` bounds each fetch that makes
    no progress."""
    async with cli.bounded("reading positions", cli.deadline(timeout)):
        remaining = {tp for tp in ends if await consumer.position(tp) < ends[tp]}
    while remaining:
        topics = ", ".join(sorted({tp.topic for tp in remaining}))
        async with cli.bounded(f"reading {topics} (no progress)", cli.deadline(timeout)):
            batches = await _fetch(consumer, remaining)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        for tp, records in batches.items():
            for record in records:
                if record.offset < ends[tp]:
                    yield record


def _consumer(settings: Settings, group_id: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **client_kwargs(settings.kafka),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


async def list_counts(
    settings: Settings, *, timeout: float = cli.DEFAULT_TIMEOUT
) -> Counter[tuple[str, str]]:
    consumer = _consumer(settings, None)
    started = cli.deadline(timeout)
    await cli.connect(consumer, started)
    counts: Counter[tuple[str, str]] = Counter()
    async with cli.closing(consumer):
        ends, _ = await _assign(consumer, settings.topics.dead_letter, force=True, until=started)
        async for record in _scan(consumer, ends, timeout=timeout):
            envelope = read_envelope(record.headers)
            counts[(envelope.get("dlq.error.category", "?"), envelope.get("dlq.error.type", "?"))] += 1
    return counts


async def show(
    settings: Settings, *, partition: int, offset: int, timeout: float = cli.DEFAULT_TIMEOUT
) -> InputRecord | None:
    topic = settings.topics.dead_letter
    consumer = _consumer(settings, None)
    started = cli.deadline(timeout)
    await cli.connect(consumer, started)
    async with cli.closing(consumer):
        if partition not in await cli.require_topic(consumer._client, topic, started):
            return None
        tp = TopicPartition(topic, partition)
        async with cli.bounded(f"reading the offsets of {topic}", started):
            consumer.assign([tp])
            first = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
        if not first <= offset < end:
            return None
        consumer.seek(tp, offset)
        while True:
            async with cli.bounded(f"reading {topic} (no progress)", cli.deadline(timeout)):
                records = (await _fetch(consumer, [tp])).get(tp, [])
                position = await consumer.position(tp)
            for record in records:
                if record.offset >= offset:
                    return record if record.offset == offset else None
            if position > offset:  # the offset held a transaction marker, or an aborted record
                return None


async def replay(
    settings: Settings,
    selection: ReplayFilter,
    *,
    dry_run: bool,
    rate: float | None,
    force: bool,
    timeout: float = cli.DEFAULT_TIMEOUT,
) -> tuple[int, int]:
    """Send matching dead letters back; returns (sent or would-send, scanned)."""
    consumer = _consumer(settings, replay_group(settings))
    producer: AIOKafkaProducer | None = None  # none for a dry run
    sent = scanned = 0
    started = cli.deadline(timeout)
    await cli.connect(consumer, started)
    async with cli.closing(consumer):
        if not dry_run:
            producer = AIOKafkaProducer(**client_kwargs(settings.kafka), acks="all", enable_idempotence=True)
            await cli.connect(producer, started)
        async with cli.closing(producer):
            ends, total = await _assign(consumer, settings.topics.dead_letter, force=force, until=started)
            progress = Progress(total, "dry run" if dry_run else "replaying")
            began = time.monotonic()
            try:
                async for record in _scan(consumer, ends, timeout=timeout):
                    scanned += 1
                    progress.advance()
                    where = f"{record.topic}/{record.partition}/{record.offset}"
                    if selection.matches(record):
                        sent += 1
                        out = replay_record(record)
                        if producer is None:
                            print(f"would replay {where} -> {out.topic}")
                            continue
                        async with cli.bounded(
                            f"waiting for the ack of {where} on {out.topic}", cli.deadline(timeout)
                        ):
                            await (
                                await producer.send(
                                    out.topic, value=out.value, key=out.key, headers=out.headers
                                )
                            )
                        if rate:
                            await asyncio.sleep(max(0.0, began + sent / rate - time.monotonic()))
                    if producer is not None:
                        # Progress lives in the replay group: a second run starts after this record.
                        async with cli.bounded("committing the replay group's offset", cli.deadline(timeout)):
                            await consumer.commit(
                                {TopicPartition(record.topic, record.partition): record.offset + 1}
                            )
            finally:
                progress.close()
    return sent, scanned


def utc_datetime(text: str) -> datetime:
    """`--since`/`--until`'s type: an ISO-8601 date or date and time; without a timezone, UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_commands(commands: "argparse._SubParsersAction[cli.Parser]") -> None:
    dlq = commands.add_parser("dlq", help="inspect and re-drive the dead-letter topic")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    list_cmd = actions.add_parser("list", help="counts by error category and type")
    cli.add_timeout(
        list_cmd,
        "seconds to connect and read the dead-letter topic's offsets, then again for each fetch "
        "that makes no progress",
    )
    show_cmd = actions.add_parser("show", help="print one dead letter and its envelope")
    show_cmd.add_argument("--partition", type=int, default=0)
    show_cmd.add_argument("--offset", type=int, default=0)
    cli.add_timeout(
        show_cmd, "seconds to connect and read the partition's offsets, then again to fetch the record"
    )
    replay_cmd = actions.add_parser("replay", help="send dead letters back to their original topic, once")
    replay_cmd.add_argument("--category", action="append", default=[], help="repeatable")
    replay_cmd.add_argument("--error-type", action="append", default=[], help="repeatable")
    replay_cmd.add_argument(
        "--since", type=utc_datetime, help="failed at or after (ISO-8601; without a timezone, UTC)"
    )
    replay_cmd.add_argument(
        "--until", type=utc_datetime, help="failed before (ISO-8601; without a timezone, UTC)"
    )
    replay_cmd.add_argument("--from-offset", type=int, help="first dead-letter offset, per partition")
    replay_cmd.add_argument("--to-offset", type=int, help="last dead-letter offset, per partition")
    replay_cmd.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    replay_cmd.add_argument("--rate", type=float, metavar="N", help="at most N records per second")
    replay_cmd.add_argument("--force", action="store_true", help="start over, resending what was replayed")
    cli.add_timeout(
        replay_cmd,
        "seconds to connect and read the offsets, then again for each fetch that makes no progress, "
        "each record's ack and each offset commit",
    )


async def run(args: argparse.Namespace, settings: Settings) -> None:
    if args.dlq_command == "list":
        counts = await list_counts(settings, timeout=args.timeout)
        print(f"{'category':<20} {'error type':<30} {'count':>8}")
        for (category, error_type), count in sorted(counts.items()):
            print(f"{category:<20} {error_type:<30} {count:>8}")
        print(f"{'total':<51} {sum(counts.values()):>8}")
    elif args.dlq_command == "show":
        record = await show(settings, partition=args.partition, offset=args.offset, timeout=args.timeout)
        if record is None:
            raise cli.CommandFailed(
                f"no dead letter on {settings.topics.dead_letter} at partition {args.partition}, "
                f"offset {args.offset}"
            )
        print(f"{record.topic}/{record.partition}/{record.offset} key={record.key!r}")
        for name, value in read_envelope(record.headers).items():
            print(f"  {name}: {value}")
        print(f"  headers: {[(k, v) for k, v in record.headers if not k.startswith('dlq.')]}")
        print(f"  value: {record.value!r}")
    else:
        selection = ReplayFilter(
            categories=frozenset(args.category),
            error_types=frozenset(args.error_type),
            failed_after=args.since,
            failed_before=args.until,
            from_offset=args.from_offset,
            to_offset=args.to_offset,
        )
        sent, scanned = await replay(
            settings, selection, dry_run=args.dry_run, rate=args.rate, force=args.force, timeout=args.timeout
        )
        print(f"{'would replay' if args.dry_run else 'replayed'} {sent} of {scanned} dead letters scanned")
