"""The work of the contenders without order_service: the simulated call and the seed's JSON outcome.

Standard library only: the pyrallel-consumer contender imports it from a venv of its own.
"""

import asyncio
import json
import os
from datetime import UTC, datetime

# The simulated call of the I/O-bound runs; 0 (the CPU-bound runs) still yields to the event loop.
IO_MS = float(os.environ.get("BENCH_IO_MS", "0"))


async def simulated_call() -> None:
    await asyncio.sleep(IO_MS / 1000)


def outcome(value: bytes) -> tuple[bytes, bytes]:
    """The seed's processed record for one JSON order, and its key: the order id."""
    order = json.loads(value)
    processed = {
        "order_id": order["order_id"],
        "customer_id": order["customer_id"],
        "status": "processed",
        "total": order["total"],
        "processed_at": datetime.now(UTC).isoformat(),
    }
    return str(order["order_id"]).encode(), json.dumps(processed).encode()
