"""Running the delivery in production: readiness, metrics, stall detection, topic provisioning."""

from kafka_delivery.operations.health import ReadinessProbe
from kafka_delivery.operations.membership import GroupMembership
from kafka_delivery.operations.metrics import CountsPerLabel, PipelineMetrics
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
    "CountsPerLabel",
    "GroupMembership",
    "PipelineMetrics",
    "ReadinessProbe",
    "StallMonitor",
    "TopicSpec",
    "ensure_topics",
    "max_message_bytes",
    "too_small",
]
