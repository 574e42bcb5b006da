"""`order-service dlq`: inspect the dead-letter topic and re-drive its records, once."""

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from order_service.connection import client_kwargs
from order_service.messaging.envelope import read_envelope
from order_service.messaging.records import InputRecord
from order_service.messaging.redrive import ReplayFilter, replay_record
from order_service.progress import Progress
from order_service.settings import Settings


def replay_group(settings: Settings) -> str:
    return f"{settings.consumer.group_id}.dlq-replay"


async def _assign(
    consumer: AIOKafkaConsumer, topic: str, *, force: bool
) -> tuple[dict[TopicPartition, int], int]:
    """Assign every partition; returns the end offsets to stop at and how many records lie before them."""
    await consumer._client.force_metadata_update()
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    if force:
        await consumer.seek_to_beginning(*partitions)
    total = 0
    for tp in partitions:
        total += max(0, ends[tp] - await consumer.position(tp))
    return ends, total


async def _scan(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> AsyncIterator[InputRecord]:
    """Every record from the consumer's positions up to `ends`."""
    remaining = {tp for tp in ends if await consumer.position(tp) < ends[tp]}
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=1000)
        for tp, records in batches.items():
            for record in records:
                if record.offset < ends[tp]:
                    yield record
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)


def _consumer(settings: Settings, group_id: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **client_kwargs(settings.kafka),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


async def list_counts(settings: Settings) -> Counter[tuple[str, str]]:
    consumer = _consumer(settings, None)
    await consumer.start()
    counts: Counter[tuple[str, str]] = Counter()
    try:
        ends, _ = await _assign(consumer, settings.topics.dead_letter, force=True)
        async for record in _scan(consumer, ends):
            envelope = read_envelope(record.headers)
            counts[(envelope.get("dlq.error.category", "?"), envelope.get("dlq.error.type", "?"))] += 1
    finally:
        await consumer.stop()
    return counts


async def show(settings: Settings, *, partition: int, offset: int) -> InputRecord | None:
    consumer = _consumer(settings, None)
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.dead_letter, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        batches = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
        records = batches.get(tp, [])
        return records[0] if records and records[0].offset == offset else None
    finally:
        await consumer.stop()


async def replay(
    settings: Settings, selection: ReplayFilter, *, dry_run: bool, rate: float | None, force: bool
) -> tuple[int, int]:
    """Send matching dead letters back; returns (sent or would-send, scanned)."""
    consumer = _consumer(settings, replay_group(settings))
    producer = AIOKafkaProducer(**client_kwargs(settings.kafka), acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    sent = scanned = 0
    started = time.monotonic()
    try:
        ends, total = await _assign(consumer, settings.topics.dead_letter, force=force)
        progress = Progress(total, "dry run" if dry_run else "replaying")
        async for record in _scan(consumer, ends):
            scanned += 1
            progress.advance()
            if selection.matches(record):
                sent += 1
                out = replay_record(record)
                if dry_run:
                    print(f"would replay {record.topic}/{record.partition}/{record.offset} -> {out.topic}")
                    continue
                await (await producer.send(out.topic, value=out.value, key=out.key, headers=out.headers))
                if rate:
                    await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
            if not dry_run:
                # Progress lives in the replay group: a second run starts after this record.
                await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
    finally:
        await producer.stop()
        await consumer.stop()
    return sent, scanned


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    dlq = commands.add_parser("dlq", help="inspect and re-drive the dead-letter topic")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    actions.add_parser("list", help="counts by error category and type")
    show_cmd = actions.add_parser("show", help="print one dead letter and its envelope")
    show_cmd.add_argument("--partition", type=int, default=0)
    show_cmd.add_argument("--offset", type=int, default=0)
    replay_cmd = actions.add_parser("replay", help="send dead letters back to their original topic, once")
    replay_cmd.add_argument("--category", action="append", default=[], help="repeatable")
    replay_cmd.add_argument("--error-type", action="append", default=[], help="repeatable")
    replay_cmd.add_argument("--since", type=datetime.fromisoformat, help="failed at or after (ISO-8601)")
    replay_cmd.add_argument("--until", type=datetime.fromisoformat, help="failed before (ISO-8601)")
    replay_cmd.add_argument("--from-offset", type=int, help="first dead-letter offset, per partition")
    replay_cmd.add_argument("--to-offset", type=int, help="last dead-letter offset, per partition")
    replay_cmd.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    replay_cmd.add_argument("--rate", type=float, metavar="N", help="at most N records per second")
    replay_cmd.add_argument("--force", action="store_true", help="start over, resending what was replayed")


async def run(args: argparse.Namespace, settings: Settings) -> None:
    if args.dlq_command == "list":
        counts = await list_counts(settings)
        print(f"{'category':<20} {'error type':<30} {'count':>8}")
        for (category, error_type), count in sorted(counts.items()):
            print(f"{category:<20} {error_type:<30} {count:>8}")
        print(f"{'total':<51} {sum(counts.values()):>8}")
    elif args.dlq_command == "show":
        record = await show(settings, partition=args.partition, offset=args.offset)
        if record is None:
            raise SystemExit(f"no dead letter at partition {args.partition}, offset {args.offset}")
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
            settings, selection, dry_run=args.dry_run, rate=args.rate, force=args.force
        )
        print(f"{'would replay' if args.dry_run else 'replayed'} {sent} of {scanned} dead letters scanned")
