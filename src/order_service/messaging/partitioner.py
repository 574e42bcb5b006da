"""Kafka's default key partitioning (murmur2, as the Java client), in fewer Python operations.

aiokafka's own murmur2 masks every intermediate value byte by byte; it was 13% of the service's
CPU time in profiles. This one reads the 4-byte words in one struct call. Same results: the unit
tests compare both on random keys.
"""

import random
import struct
from collections.abc import Sequence
from functools import lru_cache

M = 0x5BD1E995
MASK = 0xFFFFFFFF


@lru_cache(maxsize=256)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    length = len(data)
    h = (0x9747B28C ^ length) & MASK
    for k in _words(length >> 2).unpack_from(data):
        k = (k * M) & MASK
        k = ((k ^ (k >> 24)) * M) & MASK
        h = ((h * M) & MASK) ^ k
    tail, i = length & 3, length & ~3
    if tail >= 3:
        h ^= data[i + 2] << 16
    if tail >= 2:
        h ^= data[i + 1] << 8
    if tail >= 1:
        h = ((h ^ data[i]) * M) & MASK
    h = ((h ^ (h >> 13)) * M) & MASK
    return h ^ (h >> 15)


class Murmur2Partitioner:
    """Drop-in for aiokafka's DefaultPartitioner: same partition for the same key."""

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
