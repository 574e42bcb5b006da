"""The producer side: an idempotent acks=all producer fed in batches, with Kafka's partitioner."""

from kafka_delivery.producing.partitioner import Murmur2Partitioner
from kafka_delivery.producing.sink import ProducerSink

__all__ = ["Murmur2Partitioner", "ProducerSink"]
