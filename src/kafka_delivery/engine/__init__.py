"""The delivery engine, one for both guarantees, and what it is made of."""

from kafka_delivery.engine.engine import DeliveryEngine
from kafka_delivery.engine.guarantee import GroupMovedOn, Guarantee, GuaranteeContext
from kafka_delivery.engine.lanes import PartitionLane, Pending, ack_error
from kafka_delivery.engine.settings import EngineSettings

__all__ = [
    "DeliveryEngine",
    "EngineSettings",
    "GroupMovedOn",
    "Guarantee",
    "GuaranteeContext",
    "PartitionLane",
    "Pending",
    "ack_error",
]
