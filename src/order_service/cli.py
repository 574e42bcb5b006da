"""`order-service`: produce sample orders, tail a topic."""

import argparse
import asyncio
import random
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from order_service import dlq
from order_service.connection import client_kwargs
from order_service.progress import Progress
from order_service.provisioning import provision_topics
from order_service.samples import encode, malformed_corpus, sample_order
from order_service.settings import Settings, load_settings


async def produce(settings: Settings, *, count: int, invalid_every: int, topic: str, seed: int) -> None:
    rng = random.Random(seed)
    corpus = malformed_corpus(settings.processing.max_record_bytes)
    producer = AIOKafkaProducer(
        **client_kwargs(settings.kafka), acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    progress = Progress(count, f"producing to {topic}")
    try:
        pending = []
        for i in range(count):
            if invalid_every and i % invalid_every == invalid_every - 1:
                bad = corpus[(i // invalid_every) % len(corpus)]
                key, value = f"invalid-{i:08d}-{bad.name}".encode(), bad.value
            else:
                order = sample_order(i, rng, prefix=f"ord-{seed}")
                key, value = str(order["order_id"]).encode(), encode(order)
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 1000 or i == count - 1:
                await asyncio.gather(*pending)
                progress.advance(len(pending))
                pending.clear()
    finally:
        await producer.stop()


async def tail(settings: Settings, *, topic: str, from_beginning: bool, limit: int | None) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        **client_kwargs(settings.kafka),
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_committed",
    )
    await consumer.start()
    seen = 0
    try:
        async for record in consumer:
            headers = ", ".join(f"{k}={v.decode(errors='replace')}" for k, v in record.headers)
            key = record.key.decode(errors="replace") if record.key else None
            value = record.value.decode(errors="replace") if record.value else record.value
            print(f"{record.topic}[{record.partition}]@{record.offset} key={key} headers=[{headers}] {value}")
            seen += 1
            if limit and seen >= limit:
                return
    finally:
        await consumer.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `order-service` command."""
    parser = argparse.ArgumentParser(prog="order-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("produce", help="send realistic sample orders to the input topic")
    p.add_argument("--count", type=int, default=100)
    p.add_argument(
        "--invalid-every", type=int, default=0, metavar="K", help="make every K-th record malformed"
    )
    p.add_argument("--topic", help="default: ORDER_SERVICE_TOPICS__INPUT")
    p.add_argument("--seed", type=int, default=random.randrange(1_000_000))
    commands.add_parser("provision", help="create the service's topics if they are missing")
    t = commands.add_parser("tail", help="print a topic's records with key and headers")
    t.add_argument("topic")
    t.add_argument("--from-beginning", action="store_true")
    t.add_argument("--limit", type=int)
    dlq.add_commands(commands)
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        if args.command == "produce":
            topic = args.topic or settings.topics.input
            asyncio.run(
                produce(
                    settings, count=args.count, invalid_every=args.invalid_every, topic=topic, seed=args.seed
                )
            )
        elif args.command == "dlq":
            asyncio.run(dlq.run(args, settings))
        elif args.command == "provision":
            created = asyncio.run(provision_topics(settings))
            print(f"created topics: {', '.join(created)}" if created else "all topics exist")
        else:
            asyncio.run(
                tail(settings, topic=args.topic, from_beginning=args.from_beginning, limit=args.limit)
            )
    except KeyboardInterrupt:
        pass
