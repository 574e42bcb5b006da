"""Prometheus metrics of the delivery engine: throughput, failures, latency, lag, flow, rebalances."""

import bisect
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _untyped_go_string

# Bucket bounds as prometheus_client writes them ("1.0", not "1"): the same series as its Histogram.
go_string = cast(Callable[[float], str], _untyped_go_string)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class PipelineMetrics:
    """One set of metrics, named `<namespace>_...`, shared by the pipelines of one service."""

    def __init__(self, registry: CollectorRegistry, namespace: str) -> None:

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(name, doc, labels, namespace=namespace, registry=registry)

        def gauge(name: str, doc: str, labels: Sequence[str]) -> Gauge:
            return Gauge(name, doc, labels, namespace=namespace, registry=registry)

        self.dead_lettered = counter("records_dead_lettered", "Records sent to the DLQ", ["category"])
        self.retries = counter("retries", "Blocking retries of a failed record", ["attempt"])
        self.retry_hops = counter("retry_topic_hops", "Records moved to the delayed retry topic")
        self.transactions = counter("transactions", "Kafka transactions by outcome", ["result"])
        self.commit_failures = counter("commit_failures", "Offset or transaction commits that failed")
        self.publish_failures = counter("publish_failures", "Outputs the broker did not acknowledge")
        self.publish_refusals = counter(
            "publish_refusals", "Publishes refused for good (too large, not authorized)", ["reason"]
        )
        self.blocked = gauge(
            "blocked_partitions",
            "1 while an input partition is blocked by a refused publish, 0 while it is assigned and not",
            ["topic", "partition", "reason"],
        )
        self.rebalances = counter("rebalances", "Partition assignments received from the group")
        self.stalls = counter(
            "partition_stalls", "Partitions that stopped making progress (no commit while behind)", ["group"]
        )
        self.assigned = gauge("assigned_partitions", "Input partitions assigned", ["group"])
        self.batch_size = Histogram(
            "batch_size_records",
            "Records per fetched batch",
            namespace=namespace,
            registry=registry,
            buckets=BATCH_BUCKETS,
        )
        self.end_to_end = Distribution(
            f"{namespace}_end_to_end_latency_seconds",
            "Commit time minus the input record's timestamp",
            LATENCY_BUCKETS,
            registry,
        )
        self._lag = LagCollector(namespace)
        registry.register(self._lag)
        self._flow = FlowCollector(namespace)
        registry.register(self._flow)

    def watch_flow(self, group: str, source: "Callable[[], Flow]") -> None:
        """Records in flight, and per partition what is buffered, how old and not yet committed."""
        self._flow.sources[group] = source

    def watch_lag(
        self,
        group: str,
        consumer: Callable[[], AIOKafkaConsumer | None],
        committed: dict[TopicPartition, int],
    ) -> None:
        self._lag.sources[group] = (consumer, committed)

    async def baseline(self, group: str, partitions: set[TopicPartition]) -> None:
        """Committed and end offsets of newly assigned partitions: lag has a series from assignment on."""
        source, committed = self._lag.sources[group]
        consumer = source()
        if consumer is None or not partitions:
            return
        tps = sorted(partitions)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            offset = await consumer.committed(tp)
            committed[tp] = starts[tp] if offset is None else offset
        self._lag.ends.update(await consumer.end_offsets(tps))

    def end_offset(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
        """The high watermark of the last fetch, or the end offset read at assignment."""
        end: int | None = consumer.highwater(tp)
        return end if end is not None else self._lag.ends.get(tp)


class CountsPerLabel(Collector):
    """A counter with one label for the hot path, counted once per record: plain ints, no lock
    (the event loop is its only writer), exported as a counter at scrape time."""

    def __init__(
        self, name: str, doc: str, label: str, values: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._name, self._doc, self._label = name, doc, label
        self.counts: dict[str, int] = dict.fromkeys(values, 0)
        registry.register(self)

    def inc(self, value: str) -> None:
        self.counts[value] = self.counts.get(value, 0) + 1

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._doc, labels=[self._label])
        for value, count in list(self.counts.items()):
            family.add_metric([value], count)
        yield family


class Distribution(Collector):
    """A histogram for the hot path, observed once per record: bucket counts in a plain list, no
    lock (the event loop is its only writer), exported as a histogram at scrape time."""

    def __init__(self, name: str, doc: str, buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self._name, self._doc = name, doc
        self._bounds = sorted(buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        cumulative = list(itertools.accumulate(self._counts))
        buckets = [(go_string(b), c) for b, c in zip(self._bounds, cumulative, strict=False)]
        family = HistogramMetricFamily(self._name, self._doc)
        family.add_metric([], [*buckets, ("+Inf", cumulative[-1])], self._sum)
        yield family


class LagCollector(Collector):
    """Consumer lag per assigned partition at scrape time: log-end offset minus committed offset.

    The log end is the high watermark of the consumer's last fetch; the committed offset is the
    pipeline's record of its last successful commit.
    """

    def __init__(self, namespace: str) -> None:
        self._name = f"{namespace}_consumer_lag_records"
        self.sources: dict[str, tuple[Callable[[], AIOKafkaConsumer | None], dict[TopicPartition, int]]] = {}
        self.ends: dict[TopicPartition, int] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            self._name, "Records behind the log end, per partition", labels=["group", "topic", "partition"]
        )
        for group, (source, committed) in self.sources.items():
            consumer = source()
            for tp in consumer.assignment() if consumer is not None else ():
                end = consumer.highwater(tp)  # type: ignore[union-attr]
                end = end if end is not None else self.ends.get(tp)
                if end is not None and tp in committed:
                    family.add_metric([group, tp.topic, str(tp.partition)], max(0, end - committed[tp]))
        yield family


@dataclass(frozen=True, slots=True)
class PartitionFlow:
    tp: TopicPartition
    buffered: int  # records between fetch and commit
    oldest_age_s: float  # age of the oldest of them (0 when none): a stuck key shows here
    uncommitted: int  # processed offset minus committed offset


@dataclass(frozen=True, slots=True)
class Flow:
    in_flight: int
    partitions: list[PartitionFlow] = field(default_factory=list)


class FlowCollector(Collector):
    """The engine's state at scrape time, per group and partition."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self.sources: dict[str, Callable[[], Flow]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        n = self._namespace
        in_flight = GaugeMetricFamily(
            f"{n}_records_in_flight", "Records being processed now", labels=["group"]
        )
        per_partition = ["group", "topic", "partition"]
        buffered = GaugeMetricFamily(
            f"{n}_buffered_records", "Records between fetch and commit, per partition", labels=per_partition
        )
        oldest = GaugeMetricFamily(
            f"{n}_oldest_unfinished_record_age_seconds",
            "Age of the oldest record not yet committed, per partition",
            labels=per_partition,
        )
        gap = GaugeMetricFamily(
            f"{n}_processed_uncommitted_records",
            "Processed offset minus committed offset, per partition",
            labels=per_partition,
        )
        for group, source in self.sources.items():
            flow = source()
            in_flight.add_metric([group], flow.in_flight)
            for p in flow.partitions:
                labels = [group, p.tp.topic, str(p.tp.partition)]
                buffered.add_metric(labels, p.buffered)
                oldest.add_metric(labels, p.oldest_age_s)
                gap.add_metric(labels, p.uncommitted)
        yield from (in_flight, buffered, oldest, gap)
