"""The paced producer of a chaos run, in a process of its own, so that sending thousands of records a
second does not starve the harness's monitor (nor the other way round) on a busy machine.

    python -m bench.chaos.producer --bootstrap B --topic T --orders N --prefix P --seconds S --timeout X

prints one JSON line every half second, `{"acked": n, "resent": n, "errors": {...}}`, and a last
one with `"done": true` (every order acknowledged) or `"error": "..."`; exit status 0 or 1.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from typing import Any

from bench.chaos.producer.paced import PacedProducer, Production, orders

REPORT_EVERY_S = 0.5


def _line(production: Production, **extra: Any) -> str:
    return json.dumps(
        {"acked": production.acked, "resent": production.resent, "errors": dict(production.errors), **extra}
    )


async def _produce(args: argparse.Namespace) -> int:
    producer = PacedProducer(
        args.bootstrap, args.topic, orders(args.orders, prefix=args.prefix), seconds=args.seconds
    )

    async def report() -> None:
        while True:
            print(_line(producer.production), flush=True)
            await asyncio.sleep(REPORT_EVERY_S)

    reporting = asyncio.create_task(report())
    try:
        await producer.run(timeout=args.timeout)
    except TimeoutError:
        print(_line(producer.production, error=f"not every order acknowledged within {args.timeout:.0f}s"))
        return 1
    finally:
        reporting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporting
    print(_line(producer.production, done=True), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chaos.producer")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--orders", type=int, required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--seconds", type=float, required=True, help="spread the orders over this long")
    p.add_argument("--timeout", type=float, required=True, help="give up after this long")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # failed sends are counted, and sent again
    return asyncio.run(_produce(args))


if __name__ == "__main__":
    raise SystemExit(main())
