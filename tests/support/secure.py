"""The secured broker of `scripts/kafka up --secure` for tests: its client settings, ACL grants and
a TCP forwarder. Topics, producing, reading and offsets go through tests/support/kafka.py with
the admin's client settings."""

import asyncio
import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from order_service.adapters.connection import client_kwargs
from order_service.settings import KafkaSettings

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
