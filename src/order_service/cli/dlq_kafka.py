"""The Kafka work behind `order-service dlq`: count, fetch one, and re-drive dead letters, once."""

import asyncio
import time
from collections import Counter

from aiokafka import AIOKafkaProducer, TopicPartition

from kafka_delivery.handlers import read_envelope
from kafka_delivery.headers import DLQ_ERROR_CATEGORY, DLQ_ERROR_TYPE
from kafka_delivery.tools import (
    DEFAULT_TIMEOUT,
    ReplayFilter,
    bounded,
    closing,
    connect,
    deadline,
    partitions_of,
    replay_record,
)
from kafka_delivery.types import InputRecord
from order_service.adapters.connection import build_producer
from order_service.cli.progress import progress_bar
from order_service.cli.reads import assign_all, fetch, reader, scan
from order_service.settings import Settings


async def list_counts(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> Counter[tuple[str, str]]:
    """How many dead letters there are, by (error category, error type)."""
    consumer = reader(settings, None)
    started = deadline(timeout)
    await connect(consumer, started)
    counts: Counter[tuple[str, str]] = Counter()
    async with closing(consumer):
        ends, _ = await assign_all(consumer, settings.topics.dead_letter, force=True, until=started)
        async for record in scan(consumer, ends, timeout=timeout):
            envelope = read_envelope(record.headers)
            counts[(envelope.get(DLQ_ERROR_CATEGORY, "?"), envelope.get(DLQ_ERROR_TYPE, "?"))] += 1
    return counts


async def show(
    settings: Settings, *, partition: int, offset: int, timeout: float = DEFAULT_TIMEOUT
) -> InputRecord | None:
    """The dead letter at `partition`, `offset`; none if there is no such partition or record."""
    topic = settings.topics.dead_letter
    consumer = reader(settings, None)
    started = deadline(timeout)
    await connect(consumer, started)
    async with closing(consumer):
        tp = TopicPartition(topic, partition)
        async with bounded("fetching metadata", started):
            if tp not in await partitions_of(consumer, topic):
                return None
        async with bounded(f"reading the offsets of {topic}", started):
            consumer.assign([tp])
            first = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
        if not first <= offset < end:
            return None
        consumer.seek(tp, offset)
        while True:
            async with bounded(f"reading {topic} (no progress)", deadline(timeout)):
                records = (await fetch(consumer, [tp])).get(tp, [])
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
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[int, int]:
    """Send matching dead letters back; returns (sent or would-send, scanned).

    Progress is committed in the replay group after each record: a second run starts after it.
    """
    consumer = reader(settings, settings.consumer.replay_group_id)
    producer: AIOKafkaProducer | None = None  # none for a dry run
    sent = scanned = 0
    started = deadline(timeout)
    await connect(consumer, started)
    async with closing(consumer):
        if not dry_run:
            # One record in flight at a time (its ack, then its commit): lingering would only delay it.
            producer = build_producer(settings.kafka, settings.producer.model_copy(update={"linger_ms": 0}))
            await connect(producer, started)
        async with closing(producer):
            ends, total = await assign_all(consumer, settings.topics.dead_letter, force=force, until=started)
            with progress_bar(total, "dry run" if dry_run else "replaying", unit="dead letters") as advance:
                began = time.monotonic()
                async for record in scan(consumer, ends, timeout=timeout):
                    scanned += 1
                    advance(1)
                    where = f"{record.topic}/{record.partition}/{record.offset}"
                    if selection.matches(record):
                        sent += 1
                        out = replay_record(record)
                        if producer is None:
                            print(f"would replay {where} -> {out.topic}")
                            continue
                        async with bounded(
                            f"waiting for the ack of {where} on {out.topic}", deadline(timeout)
                        ):
                            await (
                                await producer.send(
                                    out.topic, value=out.value, key=out.key, headers=out.headers
                                )
                            )
                        if rate:
                            await asyncio.sleep(max(0.0, began + sent / rate - time.monotonic()))
                    if producer is not None:
                        async with bounded("committing the replay group's offset", deadline(timeout)):
                            await consumer.commit(
                                {TopicPartition(record.topic, record.partition): record.offset + 1}
                            )
    return sent, scanned
