"""The delivery engine, one for both guarantees, and what it is made of."""

from kafka_delivery.engine.engine import DeliveryEngine, EngineSettings, Guarantee

__all__ = ["DeliveryEngine", "EngineSettings", "Guarantee"]
