"""The engine's side of `GuaranteeContext` (guarantee.py): each operation a guarantee may ask for,
taken from the helper that does it. The guarantee gets this, never the engine."""

from kafka_delivery.engine.failures import Failures
from kafka_delivery.engine.partitions import Partitions
from kafka_delivery.engine.publishing import Publisher
from kafka_delivery.operations.metrics import PipelineMetrics


class EngineContext:
    def __init__(
        self,
        partitions: Partitions,
        failures: Failures,
        publisher: Publisher,
        *,
        metrics: PipelineMetrics,
        backoff_ms: int,
    ) -> None:
        self.metrics = metrics
        self.backoff_ms = backoff_ms
        self.consumer = partitions.consumer
        self.lane = partitions.lane
        self.current = partitions.current
        self.owns = partitions.owns
        self.fail = failures.fail
        self.commit_done = partitions.commit_done
        self.note_committed = partitions.note_committed
        self.publish_now = publisher.publish
        self.rewind = partitions.rewind
        self.back_off = partitions.back_off
