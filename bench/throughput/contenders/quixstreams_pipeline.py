"""Quix Streams as its docs show: an Application, topics with serializers, one StreamingDataFrame.

BENCH_GUARANTEE is its `processing_guarantee`: "at-least-once" or "exactly-once". Runs in a venv of
its own (bench/throughput/cpu_bound/peers.py). Values stay bytes in and out: the order is parsed and
validated by pydantic from the raw JSON, as order-service does; malformed records go to the
dead-letter topic with their key, through the dynamic topic of `to_topic`. Quix gives each output
its input's timestamp, so the bench has the broker stamp the outputs (bench/throughput/cpu_bound/peers.py).
"""

import os
from typing import Any, NamedTuple

from quixstreams import Application  # type: ignore[import-not-found]
from quixstreams.models.serializers import Serializer  # type: ignore[import-not-found]

from bench.throughput.contenders.order_work import outcome


class Encoded(NamedTuple):
    key: bytes | None
    value: bytes | None
    malformed: bool


class EncodedValue(Serializer):  # type: ignore[misc]
    """The value `encode` has already made."""

    def __call__(self, value: Encoded, ctx: Any) -> bytes | None:
        return value.value


def encode(value: bytes | None, key: bytes | None, timestamp: int, headers: Any) -> Encoded:
    done = outcome(value)
    return Encoded(key, value, malformed=True) if done is None else Encoded(*done, malformed=False)


def main() -> None:
    env = os.environ
    app = Application(
        broker_address=env["BENCH_BOOTSTRAP"],
        consumer_group=env["BENCH_GROUP"],
        auto_offset_reset="earliest",
        processing_guarantee=env["BENCH_GUARANTEE"],
        state_dir=f".cache/bench-state/{env['BENCH_GROUP']}",  # it keeps none: stateless
        loglevel="WARNING",
    )
    orders = app.topic(env["BENCH_INPUT"], value_deserializer="bytes")
    processed = app.topic(env["BENCH_OUTPUT"], value_serializer=EncodedValue())
    dead_letters = app.topic(env["BENCH_DEAD_LETTER"], value_serializer=EncodedValue())
    sdf = app.dataframe(orders).apply(encode, metadata=True)
    sdf.to_topic(
        lambda record, *_: dead_letters if record.malformed else processed, key=lambda record: record.key
    )
    app.run()


if __name__ == "__main__":
    main()
