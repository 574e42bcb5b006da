"""Effects in PostgreSQL exactly once: each record's database work in a batched transaction, with the
record's input coordinates and outcome in an inbox table written in the same transaction.

    batches    EffectBatches: records' work grouped into one transaction, retried while the
               database is unavailable; `transaction()` is the connection of the current one,
               `coordinates()` the record's (group, topic, partition, offset)
    inbox      Inbox: the table of (group, topic, partition, offset) -> outcome, and its retention
    database   the pool, and which errors mean "the database is unavailable" rather than "this
               record failed"
"""

from kafka_delivery.effects.batches import EffectBatches, coordinates, transaction
from kafka_delivery.effects.database import DatabaseRefused, connect_pool, unavailable
from kafka_delivery.effects.inbox import Coordinates, Inbox

__all__ = [
    "Coordinates",
    "DatabaseRefused",
    "EffectBatches",
    "Inbox",
    "connect_pool",
    "coordinates",
    "transaction",
    "unavailable",
]
