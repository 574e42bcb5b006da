"""`order-service produce`: send realistic sample orders to a topic, every K-th one malformed."""

import asyncio
import random
from typing import Annotated

import typer

from kafka_delivery.tools import DEFAULT_TIMEOUT, bounded, closing, connect, deadline, partitions_of
from order_service.adapters.connection import build_producer
from order_service.cli.common import run, timeout_option
from order_service.cli.progress import progress_bar
from order_service.cli.samples import encode, malformed_corpus, sample_order
from order_service.settings import Settings

PRODUCE_CHUNK = 1000  # records sent before waiting for their acks


async def produce(
    settings: Settings,
    *,
    count: int,
    invalid_every: int,
    topic: str,
    seed: int,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    rng = random.Random(seed)
    corpus = malformed_corpus(settings.processing.max_record_bytes)

    def record(i: int) -> tuple[bytes, bytes | None]:
        if invalid_every and i % invalid_every == invalid_every - 1:
            bad = corpus[(i // invalid_every) % len(corpus)]
            return f"invalid-{i:08d}-{bad.name}".encode(), bad.value
        order = sample_order(i, rng, prefix=f"ord-{seed}")
        return str(order["order_id"]).encode(), encode(order)

    producer = build_producer(settings.kafka, settings.producer)
    started = deadline(timeout)
    await connect(producer, started)
    async with closing(producer):
        async with bounded("fetching metadata", started):
            await partitions_of(producer, topic)
        with progress_bar(count, f"producing to {topic}", unit="orders") as advance:
            for first in range(0, count, PRODUCE_CHUNK):
                last = min(count, first + PRODUCE_CHUNK) - 1
                async with bounded(f"waiting for the acks of records {first}-{last}", deadline(timeout)):
                    pending = []
                    for i in range(first, last + 1):
                        key, value = record(i)
                        pending.append(await producer.send(topic, value=value, key=key))
                    await asyncio.gather(*pending)
                advance(last + 1 - first)


def command(
    count: Annotated[int, typer.Option("--count", min=0, metavar="N", help="how many records to send")] = 100,
    invalid_every: Annotated[
        int,
        typer.Option(
            "--invalid-every",
            metavar="K",
            min=0,
            help="make every K-th record malformed, cycling through every kind the service must "
            "survive; 0: none",
        ),
    ] = 0,
    topic: Annotated[
        str | None,
        typer.Option(
            "--topic",
            metavar="TOPIC",
            help="the topic to send to",
            show_default="ORDER_SERVICE_TOPICS__INPUT",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            metavar="SEED",
            help="seed of the random orders: the same seed sends the same orders",
            show_default="random",
        ),
    ] = None,
    timeout: Annotated[
        float,
        timeout_option(
            "seconds to connect and find the topic, then again for each batch of up to "
            f"{PRODUCE_CHUNK} records to be acknowledged"
        ),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Send realistic sample orders to the input topic, with a progress bar."""
    chosen_seed = random.randrange(1_000_000) if seed is None else seed
    run(
        lambda settings: produce(
            settings,
            count=count,
            invalid_every=invalid_every,
            topic=topic or settings.topics.input,
            seed=chosen_seed,
            timeout=timeout,
        ),
        timeout=timeout,
    )
