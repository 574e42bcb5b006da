"""`order-service`: produce sample orders, tail a topic, provision topics, inspect dead letters."""

import argparse
import asyncio
import logging
import math
import random
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
)

from order_service.adapters.connection import client_kwargs
from order_service.adapters.provisioning import provision_topics
from order_service.cli.progress import Progress
from order_service.cli.samples import encode, malformed_corpus, sample_order
from order_service.messaging.errors import ConfigurationError, MissingTopicsError
from order_service.settings import Settings, load_settings

DEFAULT_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0  # to close a client after success
ABANDON_TIMEOUT = 1.0  # after a failure: a producer that cannot reach the cluster would flush forever
PRODUCE_CHUNK = 1000  # records sent before waiting for their acks


class KafkaUnreachable(Exception):
    """Kafka did not answer in time, or could not be connected to; the message is the short cause."""


class CommandFailed(Exception):
    """An expected failure, such as a missing topic; the message is the line to print."""


# --- Kafka calls with a bound: shared by every command that talks to Kafka ---------------------------


class _ConnectionErrors(logging.Handler):
    """Why aiokafka could not connect to each broker: it logs the cause, and raises without it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.causes: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        # e.g. 'Unable connect to "%s:%s": %s' % (host, port, OSError(...))
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and isinstance(args[-1], BaseException):
            where = ":".join(str(part) for part in args[:-1])
            self.causes[where] = _describe(args[-1])

    def summary(self) -> str:
        return "; ".join(f"{where}: {cause}" for where, cause in self.causes.items())


_connection_errors = _ConnectionErrors()


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


def deadline(timeout: float) -> float:
    """The event-loop time `timeout` seconds from now, for `bounded` and `connect`."""
    return asyncio.get_running_loop().time() + timeout


@asynccontextmanager
async def bounded(doing: str, until: float) -> AsyncIterator[None]:
    """Kafka calls that must be done by `until` (event-loop time).

    A cluster that does not answer by then, or cannot be connected to, raises `KafkaUnreachable`.
    """
    try:
        async with asyncio.timeout_at(until):
            yield
    except (TimeoutError, KafkaTimeoutError, RequestTimedOutError):
        known = _connection_errors.summary()
        raise KafkaUnreachable(f"no answer while {doing}" + (f" ({known})" if known else "")) from None
    except (KafkaConnectionError, NoBrokersAvailable, NodeNotReadyError) as exc:
        raise KafkaUnreachable(_connection_errors.summary() or f"{doing}: {exc}") from None


async def connect(client: Any, until: float) -> None:
    """Start an aiokafka client by `until`; when that fails, close it again and raise."""
    try:
        async with bounded("connecting", until):
            await client.start()
    except BaseException:
        await close(client, ABANDON_TIMEOUT)
        raise


async def close(client: Any, timeout: float = CLOSE_TIMEOUT) -> None:
    """Stop a client, giving up after `timeout` seconds (a producer would flush what it holds first)."""
    stop = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
    try:
        async with asyncio.timeout(timeout):
            await stop()
    except (TimeoutError, KafkaError) as exc:
        logging.getLogger(__name__).debug("closing %s failed: %r", type(client).__name__, exc)


@asynccontextmanager
async def closing(client: Any) -> AsyncIterator[None]:
    """Close a started client (or none) after the block; after a failure, give it little time."""
    try:
        yield
    except BaseException:
        if client is not None:
            await close(client, ABANDON_TIMEOUT)
        raise
    if client is not None:
        await close(client)


async def require_topic(kafka_client: Any, topic: str, until: float) -> set[int]:
    """The partitions of `topic`, from the cluster's metadata; `CommandFailed` if it does not exist.

    `kafka_client` is the AIOKafkaClient inside a producer (`.client`) or consumer (`._client`).
    """
    async with bounded("fetching metadata", until):
        try:
            metadata = await kafka_client.fetch_all_metadata()
        except KafkaConnectionError:
            raise
        except KafkaError as exc:  # "Unable to get cluster metadata over all known brokers"
            raise KafkaConnectionError(str(exc)) from None
    partitions: set[int] | None = metadata.partitions_for_topic(topic)
    if partitions is None:
        raise CommandFailed(f"topic {topic} does not exist")
    return partitions


# --- the commands ----------------------------------------------------------------------------------


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

    producer = AIOKafkaProducer(
        **client_kwargs(settings.kafka), acks="all", enable_idempotence=True, linger_ms=5
    )
    started = deadline(timeout)
    await connect(producer, started)
    async with closing(producer):
        await require_topic(producer.client, topic, started)
        progress = Progress(count, f"producing to {topic}")
        try:
            for first in range(0, count, PRODUCE_CHUNK):
                last = min(count, first + PRODUCE_CHUNK) - 1
                async with bounded(f"waiting for the acks of records {first}-{last}", deadline(timeout)):
                    pending = []
                    for i in range(first, last + 1):
                        key, value = record(i)
                        pending.append(await producer.send(topic, value=value, key=key))
                    await asyncio.gather(*pending)
                progress.advance(last + 1 - first)
        finally:
            progress.close()


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
        await require_topic(consumer._client, topic, started)
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


async def provision(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    try:
        async with bounded("provisioning topics", deadline(timeout)):
            return await provision_topics(settings)
    except MissingTopicsError as exc:
        raise CommandFailed(str(exc)) from None


# --- the command line ------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (subcommand parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def seconds(text: str) -> float:
    """`--timeout`'s type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def add_timeout(parser: argparse.ArgumentParser, bounds: str) -> None:
    """`--timeout SECONDS`; `bounds` says what it bounds, for the help text."""
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"{bounds}; when Kafka does not answer in time, exit 1 (default: %(default)g)",
    )


def _configure_logging(settings: Settings) -> None:
    """aiokafka logs every failed connection attempt, over and over: on the terminal only at DEBUG.

    What it logs still names the cause in the one-line error.
    """
    kafka_log = logging.getLogger("aiokafka")
    kafka_log.addHandler(_connection_errors)
    if settings.log_level == "DEBUG":
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        kafka_log.propagate = False


def _bootstrap_list(settings: Settings) -> str:
    servers = client_kwargs(settings.kafka)["bootstrap_servers"]
    return servers if isinstance(servers, str) else ",".join(servers)


def _fail(message: str) -> NoReturn:
    sys.exit(f"order-service: {message}")


async def _run(args: argparse.Namespace, settings: Settings) -> None:
    from order_service.cli import dlq

    if args.command == "produce":
        topic = args.topic or settings.topics.input
        await produce(
            settings,
            count=args.count,
            invalid_every=args.invalid_every,
            topic=topic,
            seed=args.seed,
            timeout=args.timeout,
        )
    elif args.command == "dlq":
        await dlq.run(args, settings)
    elif args.command == "provision":
        created = await provision(settings, timeout=args.timeout)
        print(f"created topics: {', '.join(created)}" if created else "all topics exist")
    else:
        await tail(
            settings,
            topic=args.topic,
            from_beginning=args.from_beginning,
            limit=args.limit,
            timeout=args.timeout,
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `order-service` command."""
    # Imported here: `dlq` builds on this module's bounded Kafka calls.
    from order_service.cli import dlq

    parser = Parser(prog="order-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("produce", help="send realistic sample orders to the input topic")
    p.add_argument("--count", type=int, default=100)
    p.add_argument(
        "--invalid-every", type=int, default=0, metavar="K", help="make every K-th record malformed"
    )
    p.add_argument("--topic", help="default: ORDER_SERVICE_TOPICS__INPUT")
    p.add_argument("--seed", type=int, default=random.randrange(1_000_000))
    add_timeout(
        p,
        "seconds to connect and find the topic, then again for each batch of up to "
        f"{PRODUCE_CHUNK} records to be acknowledged",
    )
    provision_cmd = commands.add_parser("provision", help="create the service's topics if they are missing")
    add_timeout(provision_cmd, "seconds for everything: connect, list the topics and create the missing ones")
    t = commands.add_parser("tail", help="print a topic's records with key and headers")
    t.add_argument("topic")
    t.add_argument("--from-beginning", action="store_true")
    t.add_argument("--limit", type=int)
    add_timeout(
        t,
        "seconds to start: connect, find the topic and its start offsets; once started, tail "
        "follows the topic until --limit records or Ctrl-C",
    )
    dlq.add_commands(commands)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        _fail(str(exc))
    _configure_logging(settings)
    try:
        bootstrap = _bootstrap_list(settings)
    except ConfigurationError as exc:  # e.g. TLS files that do not load
        _fail(str(exc))
    try:
        asyncio.run(_run(args, settings))
    except KeyboardInterrupt:
        pass
    except KafkaUnreachable as exc:
        _fail(f"cannot reach Kafka at {bootstrap} within {args.timeout:g}s: {exc}")
    except CommandFailed as exc:
        _fail(f"{exc} (Kafka at {bootstrap})")
    except ConfigurationError as exc:  # provisioning: missing topics that may not be created, and such
        _fail(str(exc))
    except KafkaError as exc:
        _fail(f"Kafka at {bootstrap}: {exc}")
