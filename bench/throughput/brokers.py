"""The benchmark's own Kafka: a fresh local cluster from scripts/kafka, taken down after."""

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from bench.throughput.harness import KAFKA


@contextmanager
def local_kafka(brokers: int) -> Iterator[str]:
    """A fresh cluster of `brokers` nodes, on 127.0.0.1:9092 and up as scripts/kafka lays it out."""
    subprocess.run([KAFKA, "down"], check=True)
    try:
        up = subprocess.run(
            [KAFKA, "up", "--brokers", str(brokers)], check=True, stdout=subprocess.PIPE, text=True
        )
        yield up.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([KAFKA, "down"], check=False)
