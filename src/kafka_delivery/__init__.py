"""kafka_delivery: generic Kafka delivery on aiokafka and FastStream.

Records are fetched in batches, processed concurrently in key order, published in offset order
per partition and committed over a contiguous prefix, at least once or exactly once; what cannot
be processed goes to a dead-letter topic with an envelope. Nothing here knows what the records
mean: a service supplies a record handler and wires the parts in its composition root.

    engine/       the delivery engine, its scheduler, lanes, pauses and backoff
    guarantees/   at-least-once and exactly-once: how outputs are published and offsets committed
    producing/    the producer side: batches, the sink, Kafka's partitioner
    handlers/     record handlers: JSON events, dead letters and their envelope, retries, tracing
    operations/   health, metrics, stalls, topics
    tools/        bounded reading, re-drive, reconciliation
    faststream/   the FastStream glue
    errors, headers, logs, types: one module each, used across the packages

Import from the packages (`from kafka_delivery.engine import DeliveryEngine`); their modules are
private. The service on top is held to that by import-linter (`make lint`).
"""
