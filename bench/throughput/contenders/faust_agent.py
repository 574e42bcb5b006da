"""Faust (faust-streaming) as its docs show: an App, its topics, one agent; at-least-once.

Runs in a venv of its own (bench/throughput/cpu_bound/peers.py) with Faust's speed-up extras and uvloop
(`-L uvloop worker`). Raw bytes in and out: pydantic parses and validates the JSON, as in
order-service; malformed records go to the dead-letter topic with their key. Faust creates only
its internal topics: the bench creates these, as a deployment would.
"""

import os
from typing import Any

import faust  # type: ignore[import-not-found]

from bench.throughput.contenders.order_work import outcome

env = os.environ
app = faust.App(
    env["BENCH_GROUP"],
    broker=[f"kafka://{address}" for address in env["BENCH_BOOTSTRAP"].split(",")],
    processing_guarantee="at_least_once",
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
    # order-service's producer batching: Faust's default linger of 0 sends a request per record.
    producer_linger=0.005,
    datadir=f".cache/bench-state/{env['BENCH_GROUP']}",  # it keeps none: no tables
)
orders = app.topic(env["BENCH_INPUT"])
processed = app.topic(env["BENCH_OUTPUT"])
dead_letters = app.topic(env["BENCH_DEAD_LETTER"])


@app.agent(orders)  # type: ignore[untyped-decorator]
async def process(stream: Any) -> None:
    async for key, value in stream.items():
        done = outcome(value)
        if done is None:
            await dead_letters.send(key=key, value=value)
        else:
            await processed.send(key=done[0], value=done[1])


if __name__ == "__main__":
    app.main()
