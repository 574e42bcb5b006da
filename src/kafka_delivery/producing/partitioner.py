"""Kafka's default key partitioning: murmur2 of the key, as the Java client computes it.

`murmurhash2` (a compiled MurmurHash2 with Kafka's seed) costs 0.25 µs a key; the Python version it
replaces cost 2.2 µs, about 5 % of a record's whole CPU in the service it was measured in. The
unit tests compare it with aiokafka's reference implementation on random keys of every length and
with the Java client's test vectors.
"""

import random
from collections.abc import Sequence

from murmurhash2 import murmurhash2

# The seed of Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """The unsigned 32-bit murmur2 of `data`."""
    return murmurhash2(data, SEED)


class Murmur2Partitioner:
    """Drop-in for aiokafka's DefaultPartitioner: same partition for the same key."""

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
