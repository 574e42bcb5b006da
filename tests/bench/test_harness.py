"""The bench harness's wait for a contender: bounded, and without holding the bench's event loop."""

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from bench.throughput import harness

from tests.support.service import free_port


@pytest.fixture
def contender() -> Iterator[subprocess.Popen[bytes]]:
    """A process that runs on, standing in for the contender whose readiness is awaited."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield process
    process.kill()
    process.wait()


async def test_a_health_endpoint_that_never_answers_leaves_the_event_loop_free(
    contender: subprocess.Popen[bytes],
) -> None:
    port = free_port()
    # The kernel completes the connection and takes the request; no one ever answers it.
    with socket.create_server(("127.0.0.1", port)):
        waiting = asyncio.create_task(harness.wait_ready(str(port), contender))
        try:
            loop = asyncio.get_running_loop()
            ticks, until = 0, loop.time() + 1.0
            while loop.time() < until:
                await asyncio.sleep(0.05)
                ticks += 1

            assert not waiting.done()
            # Each request waits up to 2 s for an answer; on the loop's thread it held every tick.
            assert ticks >= 10, f"the loop ran {ticks} times in 1 s"
        finally:
            waiting.cancel()
