"""The harness's side of the paced producer: it starts `python -m bench.chaos.producer` and follows
the progress lines the process prints."""

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.chaos.producer.paced import Production


@dataclass
class ProducerProcess:
    """The harness's side: starts the process and follows its progress lines."""

    bootstrap: str
    topic: str
    orders: int
    prefix: str
    seconds: float
    timeout: float
    production: Production = field(init=False)
    error: str | None = None
    done: bool = False

    def __post_init__(self) -> None:
        self.production = Production(total=self.orders)

    async def run(self) -> Production:
        """Until the process ends; RuntimeError when not every order was acknowledged."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.chaos.producer",
            *("--bootstrap", self.bootstrap, "--topic", self.topic, "--orders", str(self.orders)),
            *("--prefix", self.prefix, "--seconds", str(self.seconds), "--timeout", str(self.timeout)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        self.production.started_at = time.monotonic()
        assert process.stdout is not None
        try:
            async for raw in process.stdout:
                with contextlib.suppress(ValueError):
                    self._update(json.loads(raw))
            await process.wait()
        finally:
            self.production.finished_at = time.monotonic()
            if process.returncode is None:
                process.kill()
                await process.wait()
        if not self.done:
            raise RuntimeError(f"producer: {self.error or f'exit {process.returncode}'}")
        return self.production

    def _update(self, line: dict[str, Any]) -> None:
        self.production.acked = int(line.get("acked", self.production.acked))
        self.production.resent = int(line.get("resent", self.production.resent))
        self.production.errors.clear()
        self.production.errors.update(line.get("errors", {}))
        self.done = self.done or bool(line.get("done"))
        self.error = line.get("error", self.error)
