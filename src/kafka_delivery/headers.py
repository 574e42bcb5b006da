"""Every record header the delivery machinery writes or reads, by name.

The names are a wire contract: other services, operators' scripts and older dead letters already on
the topics spell them this way (docs/dead-letter-envelope.md, docs/delivery-guarantees.md). Change a
value here and you break them; add a name here rather than spelling it where it is used.
"""

# Provenance, on every output record: the input record it is the outcome of, through any retry hops.
# Written by retry.provenance; read by reconciliation (reconcile_model.py) to match outcomes to inputs.
# Dead letters carry the same facts as DLQ_ORIGINAL_*.
INPUT_TOPIC = "input.topic"
INPUT_PARTITION = "input.partition"
INPUT_OFFSET = "input.offset"
# Only on outputs of a record consumed elsewhere than where it entered (the retry topic):
# `topic/partition/offset` of the record actually consumed.
INPUT_VIA = "input.via"

# The delayed retry topic: written by retry.RetryTopic.hop on each hop; read by the delay gate (when
# a hop is due), by retry.origin (where the record first entered) and by reconciliation (which input
# was retried). Dropped, by RETRY_PREFIX, when a record leaves the retry topic as a dead letter.
RETRY_PREFIX = "retry."
RETRY_ATTEMPTS = "retry.attempts"
RETRY_DUE_AT = "retry.due.at"
RETRY_ORIGINAL_TOPIC = "retry.original.topic"
RETRY_ORIGINAL_PARTITION = "retry.original.partition"
RETRY_ORIGINAL_OFFSET = "retry.original.offset"
RETRY_ORIGINAL_TIMESTAMP = "retry.original.timestamp"

# The dead-letter envelope (version 1): written by envelope.dead_letter; read by the dead-letter tools
# (counts, show, the replay filter), by re-drive (where to send a record back) and by reconciliation
# (which input a dead letter stands for). Re-drive drops every header under DLQ_PREFIX.
DLQ_PREFIX = "dlq."
DLQ_ENVELOPE_VERSION = "dlq.envelope.version"
DLQ_ORIGINAL_TOPIC = "dlq.original.topic"
DLQ_ORIGINAL_PARTITION = "dlq.original.partition"
DLQ_ORIGINAL_OFFSET = "dlq.original.offset"
DLQ_ORIGINAL_TIMESTAMP = "dlq.original.timestamp"
DLQ_CONSUMER_GROUP = "dlq.consumer.group"
DLQ_ERROR_CATEGORY = "dlq.error.category"
DLQ_ERROR_TYPE = "dlq.error.type"
DLQ_ERROR_MESSAGE = "dlq.error.message"
DLQ_ATTEMPTS = "dlq.attempts"
DLQ_FAILED_AT = "dlq.failed.at"

# On a re-driven record: `topic/partition/offset` of the dead letter it was replayed from. Written by
# redrive.replay_record; read by no code, only by people tracing a record back to its dead letter.
DLQ_REPLAYED_FROM = "dlq.replayed.from"
