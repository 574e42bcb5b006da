"""Prometheus metrics of a delivery pipeline: throughput, failures, latency, lag, rebalances."""

import time
from collections.abc import Callable, Iterator, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from order_service.messaging.records import InputRecord

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class PipelineMetrics:
    """One set of metrics, named `<namespace>_...`, shared by the pipelines of one service."""

    def __init__(self, registry: CollectorRegistry, namespace: str) -> None:

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(name, doc, labels, namespace=namespace, registry=registry)

        self.dead_lettered = counter("records_dead_lettered", "Records sent to the DLQ", ["category"])
        self.retries = counter("retries", "Blocking retries of a failed record", ["attempt"])
        self.retry_hops = counter("retry_topic_hops", "Records moved to the delayed retry topic")
        self.transactions = counter("transactions", "Kafka transactions by outcome", ["result"])
        self.commit_failures = counter("commit_failures", "Offset or transaction commits that failed")
        self.publish_failures = counter("publish_failures", "Outputs the broker did not acknowledge")
        self.rebalances = counter("rebalances", "Partition assignments received from the group")
        self.assigned = Gauge(
            "assigned_partitions",
            "Input partitions assigned",
            ["group"],
            namespace=namespace,
            registry=registry,
        )
        self.batch_size = Histogram(
            "batch_size_records",
            "Records per fetched batch",
            namespace=namespace,
            registry=registry,
            buckets=BATCH_BUCKETS,
        )
        self.processing = Histogram(
            "batch_processing_seconds",
            "Time to process, publish and commit one batch",
            namespace=namespace,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.end_to_end = Histogram(
            "end_to_end_latency_seconds",
            "Commit time minus the input record's timestamp",
            namespace=namespace,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._lag = LagCollector(namespace)
        registry.register(self._lag)

    def watch_lag(
        self,
        group: str,
        consumer: Callable[[], AIOKafkaConsumer | None],
        committed: dict[TopicPartition, int],
    ) -> None:
        self._lag.sources[group] = (consumer, committed)

    def batch_done(self, records: Sequence[InputRecord], started: float) -> None:
        now = time.time()
        self.batch_size.observe(len(records))
        self.processing.observe(time.monotonic() - started)
        for record in records:
            self.end_to_end.observe(max(0.0, now - record.timestamp / 1000))


class LagCollector(Collector):
    """Consumer lag per assigned partition at scrape time: log-end offset minus committed offset.

    The log end is the high watermark of the consumer's last fetch; the committed offset is the
    pipeline's record of its last successful commit.
    """

    def __init__(self, namespace: str) -> None:
        self._name = f"{namespace}_consumer_lag_records"
        self.sources: dict[str, tuple[Callable[[], AIOKafkaConsumer | None], dict[TopicPartition, int]]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            self._name, "Records behind the log end, per partition", labels=["group", "topic", "partition"]
        )
        for group, (source, committed) in self.sources.items():
            consumer = source()
            for tp in consumer.assignment() if consumer is not None else ():
                end = consumer.highwater(tp)  # type: ignore[union-attr]
                if end is not None and tp in committed:
                    family.add_metric([group, tp.topic, str(tp.partition)], max(0, end - committed[tp]))
        yield family
