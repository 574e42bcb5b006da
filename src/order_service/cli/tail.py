"""`order-service tail`: print a topic's records with partition, offset, key and headers."""

import asyncio
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer

from kafka_delivery.tools import DEFAULT_TIMEOUT, bounded, closing, connect, deadline, partitions_of
from order_service.adapters.connection import client_kwargs
from order_service.cli.common import run, timeout_option
from order_service.settings import Settings


async def tail(
    settings: Settings,
    *,
    topic: str,
    from_beginning: bool,
    limit: int | None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    consumer = AIOKafkaConsumer(
        **client_kwargs(settings.kafka),
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_committed",
    )
    started = deadline(timeout)
    await connect(consumer, started)
    seen = 0
    async with closing(consumer):
        async with bounded("fetching metadata", started):
            await partitions_of(consumer, topic)
        consumer.subscribe([topic])
        async with bounded(f"finding the start offsets of {topic}", started):
            while not consumer.assignment():  # noqa: ASYNC110 - aiokafka has no public wait for it
                await asyncio.sleep(0.05)
            for tp in consumer.assignment():
                await consumer.position(tp)
        # Started: from here on, follow the topic until --limit or Ctrl-C.
        async for record in consumer:
            headers = ", ".join(f"{k}={v.decode(errors='replace')}" for k, v in record.headers)
            key = record.key.decode(errors="replace") if record.key else None
            value = record.value.decode(errors="replace") if record.value else record.value
            print(f"{record.topic}[{record.partition}]@{record.offset} key={key} headers=[{headers}] {value}")
            seen += 1
            if limit and seen >= limit:
                return


def command(
    topic: Annotated[str, typer.Argument(metavar="TOPIC", help="the topic to print", show_default=False)],
    from_beginning: Annotated[
        bool,
        typer.Option("--from-beginning", help="start at the oldest record, not at the end of the topic"),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, metavar="N", help="stop after N records", show_default="follow until Ctrl-C"
        ),
    ] = None,
    timeout: Annotated[
        float,
        timeout_option(
            "seconds to start: connect, find the topic and its start offsets; once started, tail "
            "follows the topic until --limit records or Ctrl-C"
        ),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Print a topic's records with partition, offset, key and headers (read committed)."""
    run(
        lambda settings: tail(
            settings, topic=topic, from_beginning=from_beginning, limit=limit, timeout=timeout
        ),
        timeout=timeout,
    )
