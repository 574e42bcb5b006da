"""Running the delivery in production: readiness, metrics, stall detection, topic provisioning."""

from kafka_delivery.operations.health import GroupMembership, ReadinessProbe
from kafka_delivery.operations.metrics import PipelineMetrics, Tally
from kafka_delivery.operations.stalls import StallMonitor
from kafka_delivery.operations.topics import (
    ENVELOPE_HEADROOM_BYTES,
    MAX_MESSAGE_BYTES,
    TopicSpec,
    ensure_topics,
    max_message_bytes,
    too_small,
)

__all__ = [
    "ENVELOPE_HEADROOM_BYTES",
    "MAX_MESSAGE_BYTES",
    "GroupMembership",
    "PipelineMetrics",
    "ReadinessProbe",
    "StallMonitor",
    "Tally",
    "TopicSpec",
    "ensure_topics",
    "max_message_bytes",
    "too_small",
]
