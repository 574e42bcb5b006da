"""Tools next to the service: bounded Kafka calls, reading topics to their end, re-driving dead
letters, reconciling."""

from kafka_delivery.tools.bounded_calls import (
    ABANDON_TIMEOUT,
    CLOSE_TIMEOUT,
    DEFAULT_TIMEOUT,
    bounded,
    close,
    closing,
    connect,
    deadline,
    stalled,
    within,
)
from kafka_delivery.tools.reading import (
    assign_all,
    fetch,
    partitions_of,
    read_to_end,
    reading_consumer,
    remaining,
)
from kafka_delivery.tools.reconcile import (
    InboxCheck,
    InboxReport,
    Report,
    Selection,
    Topics,
    read_and_reconcile,
)
from kafka_delivery.tools.redrive import ReplayFilter, replay_record

__all__ = [
    "ABANDON_TIMEOUT",
    "CLOSE_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "InboxCheck",
    "InboxReport",
    "ReplayFilter",
    "Report",
    "Selection",
    "Topics",
    "assign_all",
    "bounded",
    "close",
    "closing",
    "connect",
    "deadline",
    "fetch",
    "partitions_of",
    "read_and_reconcile",
    "read_to_end",
    "reading_consumer",
    "remaining",
    "replay_record",
    "stalled",
    "within",
]
