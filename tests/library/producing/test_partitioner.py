import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from kafka_delivery.producing.partitioner import Murmur2Partitioner, murmur2


def test_murmur2_matches_the_reference_on_random_keys_of_every_length() -> None:
    rng = random.Random(3)
    for length in range(70):
        for _ in range(50):
            key = bytes(rng.randrange(256) for _ in range(length))
            assert murmur2(key) == aiokafka_murmur2(key), key


def test_partitions_match_kafkas_default_partitioner() -> None:
    partitions = list(range(6))
    for i in range(2000):
        key = f"ord-{i:08d}".encode()
        ours = Murmur2Partitioner()(key, partitions, partitions)
        assert ours == DefaultPartitioner()(key, partitions, partitions)


def test_known_java_client_values() -> None:
    # org.apache.kafka.common.utils.Utils.murmur2 test vectors (as unsigned 32-bit).
    assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
    assert murmur2(b"foobar") == -790332482 & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == -985981536 & 0xFFFFFFFF
