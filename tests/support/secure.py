"""The secured broker of `scripts/kafka up --secure` for tests: its client settings, ACL grants,
and admin-side helpers (topics, producing, reading, offsets) over TLS."""

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code
from bench.kafka import offsets

from kafka_delivery.tools import reading as kafka_io
from order_service.adapters.connection import client_kwargs
from order_service.settings import KafkaSettings
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "kafka"
PREFIX = "ORDER_SERVICE_KAFKA__"
# The order-service principal's ACLs for every name a test picks (prefixed): sec.in.*, sec.out.*, ...
TOPIC_PREFIXES = {"input": "sec.in.", "output": "sec.out.", "dead_letter": "sec.dlq.", "retry": "sec.retry."}
GROUP_PREFIX = "sec-order-service"
SESSION_GRANT = (
    *("--input", TOPIC_PREFIXES["input"], "--output", TOPIC_PREFIXES["output"]),
    *("--dead-letter", TOPIC_PREFIXES["dead_letter"], "--retry", TOPIC_PREFIXES["retry"]),
    *("--group", GROUP_PREFIX),
)


def read_env(path: Path) -> dict[str, str]:
    lines = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in lines}


def client(env: dict[str, str]) -> dict[str, Any]:
    """aiokafka keyword arguments for the ORDER_SERVICE_KAFKA__* settings in `env`."""
    fields = {k.removeprefix(PREFIX).lower(): v for k, v in env.items() if k.startswith(PREFIX)}
    return client_kwargs(KafkaSettings.model_validate(fields))


@dataclass(frozen=True)
class SecureBroker:
    run_dir: Path
    port: int

    def env(self, name: str) -> dict[str, str]:
        """`scram`, `mtls` (the order-service principal), `admin`, `admin-mtls`."""
        return read_env(self.run_dir / f"secure-{name}.env")

    @property
    def admin(self) -> dict[str, Any]:
        return client(self.env("admin"))

    @property
    def pki(self) -> Path:
        return self.run_dir / "pki"

    def secrets(self) -> list[str]:
        """Every secret value: SCRAM passwords and private keys' bodies (none may reach a log)."""
        values = [line.split("=", 1)[1] for line in (self.run_dir / "secrets").read_text().splitlines()]
        for key in self.pki.glob("*.key"):
            body = [line for line in key.read_text().splitlines() if not line.startswith("-----")]
            values.extend(body[:2])
        return values

    def script(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
        environ = {
            **os.environ,
            **(env or {}),
            "KAFKA_RUN_DIR": str(self.run_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.port + 2),
        }
        done = subprocess.run(
            [str(SCRIPT), "--secure", *args], env=environ, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode:
            raise RuntimeError(f"scripts/kafka --secure {' '.join(args)}: {done.stderr[-3000:]}")
        return done.stdout

    def grant(self, *args: str) -> None:
        self.script("grant", *args)

    def revoke(self, *args: str) -> None:
        self.script("revoke", *args)

    def acl(self, action: str, *args: str) -> None:
        """kafka-acls for the order-service principal, e.g. acl("remove", "--operation", "Write", ...)."""
        extra = ["--force"] if action == "remove" else []
        self.script(
            "tool", "acls", "--bootstrap-server", f"127.0.0.1:{self.port}", "--command-config",
            str(self.run_dir / "admin-scram.properties"), f"--{action}", *extra,
            "--allow-principal", "User:order-service", *args,
        )  # fmt: skip


@contextlib.asynccontextmanager
async def admin_client(kwargs: dict[str, Any]) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**kwargs)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(
    kwargs: dict[str, Any], names: Sequence[str], *, partitions: int, configs: dict[str, str] | None = None
) -> None:
    async with admin_client(kwargs) as admin:
        response = await admin.create_topics(
            [NewTopic(n, partitions, 1, topic_configs=configs or {}) for n in names]
        )
        errors = [(n, for_code(code).__name__) for n, code, *_ in response.topic_errors if code]
        assert not errors, f"could not create topics: {errors}"
        await eventually(admin.list_topics, until=lambda have: set(names) <= set(have), what="topics")


async def produce(kwargs: dict[str, Any], topic: str, records: Sequence[Any]) -> None:
    producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k, headers=h) for k, v, h in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(kwargs: dict[str, Any], topic: str, *, expected: int, timeout: float = 90) -> list[Any]:
    """Everything on `topic` (read_committed) once at least `expected` records arrived."""
    consumer = kafka_io.reading_consumer(**kwargs)
    consumer.subscribe([topic])
    await consumer.start()
    records: list[Any] = []
    try:

        async def fetch() -> int:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                records.extend(batch)
            return len(records)

        await eventually(fetch, until=lambda n: n >= expected, timeout=timeout, interval=0, what=topic)
        while batches := await consumer.getmany(timeout_ms=1000):
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def committed_and_end(
    kwargs: dict[str, Any], topic: str, group: str
) -> tuple[dict[int, int | None], dict[int, int]]:
    consumer = kafka_io.reading_consumer(group_id=group, **kwargs)
    await consumer.start()
    try:
        return await offsets.committed_and_end(consumer, topic)
    finally:
        await consumer.stop()


async def wait_all_committed(kwargs: dict[str, Any], topic: str, group: str, timeout: float = 90) -> None:
    await eventually(
        lambda: committed_and_end(kwargs, topic, group),
        until=lambda ce: ce[0] == ce[1],
        timeout=timeout,
        what=f"committed == end on {topic}",
    )


async def forward(listen: tuple[str, int], target: tuple[str, int]) -> asyncio.Server:
    """A TCP forwarder: reaching the broker by an address its certificate does not carry."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, *listen)
