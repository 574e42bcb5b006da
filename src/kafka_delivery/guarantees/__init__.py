"""The two delivery guarantees: how outputs are published and a partition's prefix committed."""

from kafka_delivery.guarantees.at_least_once import AtLeastOnce
from kafka_delivery.guarantees.exactly_once import ExactlyOnce
from kafka_delivery.guarantees.transactional_producers import PartitionProducers

__all__ = ["AtLeastOnce", "ExactlyOnce", "PartitionProducers"]
