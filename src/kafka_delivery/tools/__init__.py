"""Tools next to the service: reading topics to their end, re-driving dead letters, reconciling."""

from kafka_delivery.tools.reading import assign_all, fetch, read_to_end, reading_consumer, remaining
from kafka_delivery.tools.reconcile import (
    CannotConnect,
    CannotRead,
    Report,
    Selection,
    Topics,
    read_and_reconcile,
)
from kafka_delivery.tools.redrive import ReplayFilter, replay_record

__all__ = [
    "CannotConnect",
    "CannotRead",
    "ReplayFilter",
    "Report",
    "Selection",
    "Topics",
    "assign_all",
    "fetch",
    "read_and_reconcile",
    "read_to_end",
    "reading_consumer",
    "remaining",
    "replay_record",
]
