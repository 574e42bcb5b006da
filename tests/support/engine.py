"""A delivery engine over in-memory fakes, for unit tests: the rigs of both guarantees, a handler that
holds chosen records and observes which run at once, and a sink that holds chosen sends or acks.

The engine works in background tasks (`process` only admits a batch): tests wait for outcomes with
`wait_until`, and `Engines.close` stops every engine a test built.
"""

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from kafka_delivery.engine import DeliveryEngine, EngineSettings, Guarantee
from kafka_delivery.guarantees.at_least_once import AtLeastOnce
from kafka_delivery.guarantees.exactly_once import ExactlyOnce
from kafka_delivery.guarantees.transactional_producers import PartitionProducers, transactional_id
from kafka_delivery.handlers.retry import DelayGate
from kafka_delivery.operations.metrics import PipelineMetrics
from kafka_delivery.types import OutgoingRecord, RecordHandler, Waits
from tests.support.fakes import FakeConsumer, FakeKafka, FakeProducer, FakeSink, record, sample

TP0 = TopicPartition("in", 0)
TP1 = TopicPartition("in", 1)
GROUP = "g"
APP = "app"


def value(tp: TopicPartition, offset: int) -> bytes:
    """The value of a record made by `keyed` (and fakes.records), and of its echoed output."""
    return f"{tp.topic}-{tp.partition}@{offset}".encode()


def keyed(
    tp: TopicPartition, offsets: Iterable[int], key: Callable[[int], bytes | None] = lambda o: b"k%d" % o
) -> list[Any]:
    """Records of one partition, each with its own key unless `key` says otherwise."""
    return [record(tp.topic, tp.partition, o, key=key(o), value=value(tp, o)) for o in offsets]


def outputs_of(tp: TopicPartition, values: Iterable[bytes | None]) -> list[bytes | None]:
    """The output values (echoes) that come from records of `tp`, in the order given."""
    prefix = f"{tp.topic}-{tp.partition}@".encode()
    return [v for v in values if v is not None and v.startswith(prefix)]


class Echo:
    """One output per input, on `out`, keyed like the input, its value naming the input; an
    ImmediateHandler (its `now` is what an eager engine calls)."""

    async def __call__(self, rec: Any) -> Sequence[OutgoingRecord]:
        return self.now(rec)

    def now(self, rec: Any) -> Sequence[OutgoingRecord]:
        return [OutgoingRecord(topic="out", key=rec.key, value=rec.value, headers=[("n", b"1")])]


echo = Echo()


class Immediate:
    """A test's async handler that never waits, given the `now` of an ImmediateHandler: it runs the
    coroutine to its end in the caller (and fails loudly if the coroutine does wait)."""

    def __init__(self, handler: RecordHandler) -> None:
        self._handler = handler

    def __call__(self, rec: Any) -> Coroutine[Any, Any, Sequence[OutgoingRecord]]:
        return self._handler(rec)

    def now(self, rec: Any) -> Sequence[OutgoingRecord]:
        coroutine = self._handler(rec)
        try:
            coroutine.send(None)
        except StopIteration as done:
            outputs: Sequence[OutgoingRecord] = done.value
            return outputs
        coroutine.close()
        raise AssertionError("this test handler waits: give it a `now` that raises Waits")


class Work:
    """A handler: echoes each record after `pause_s`, holding those told to wait until released,
    and keeps which records started and finished, and how many ran at once (of one key)."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.pause_s = pause_s
        self.started: list[bytes] = []
        self.finished: list[bytes] = []
        self.most_at_once = 0
        self.most_of_one_key = 0
        self._running: list[Any] = []
        self._holds: dict[bytes, asyncio.Event] = {}
        self._failures: dict[bytes, BaseException] = {}

    def hold(self, *values: bytes) -> None:
        for v in values:
            self._holds[v] = asyncio.Event()

    def release(self, *values: bytes) -> None:
        for v in values:
            self._holds.pop(v).set()

    def fail_once(self, value: bytes, error: BaseException) -> None:
        self._failures[value] = error

    def running(self) -> int:
        return len(self._running)

    def now(self, rec: Any) -> Sequence[OutgoingRecord]:
        """An eager engine's call: a record told to wait, or paused, goes on in a task (Waits)."""
        if rec.value in self._holds or self.pause_s:
            raise Waits(self(rec))
        self.started.append(rec.value)
        self.most_at_once = max(self.most_at_once, len(self._running) + 1)
        self.most_of_one_key = max(
            self.most_of_one_key, 1 + sum(1 for r in self._running if r.key == rec.key)
        )
        self.finished.append(rec.value)
        if (error := self._failures.pop(rec.value, None)) is not None:
            raise error
        return echo.now(rec)

    async def __call__(self, rec: Any) -> Sequence[OutgoingRecord]:
        self.started.append(rec.value)
        self._running.append(rec)
        self.most_at_once = max(self.most_at_once, len(self._running))
        same_key = sum(1 for r in self._running if r.key == rec.key)
        self.most_of_one_key = max(self.most_of_one_key, same_key)
        try:
            if (gate := self._holds.get(rec.value)) is not None:
                await gate.wait()
            elif self.pause_s:
                await asyncio.sleep(self.pause_s)
        finally:
            self._running.remove(rec)
        self.finished.append(rec.value)
        if (error := self._failures.pop(rec.value, None)) is not None:
            raise error
        return await echo(rec)


class HeldSink(FakeSink):
    """A FakeSink that can hold the ack of a record (a broker that has not answered yet) until the
    test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self._held_acks: dict[bytes, asyncio.Event] = {}

    def hold_ack(self, value: bytes) -> asyncio.Event:
        gate = self._held_acks[value] = asyncio.Event()
        return gate

    def send(self, record: OutgoingRecord) -> "asyncio.Future[Any]":
        if record.value is None or (gate := self._held_acks.get(record.value)) is None:
            return super().send(record)
        self.sent.append(record)
        return asyncio.ensure_future(self._ack_when(gate, record))

    async def _ack_when(self, gate: asyncio.Event, record: OutgoingRecord) -> None:
        await gate.wait()
        self.acked.append(record)


@dataclass
class Rig:
    engine: DeliveryEngine
    consumer: FakeConsumer
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float | None:
        return sample(self.registry, f"t_{name}", **labels)

    def flow(self, name: str, tp: TopicPartition) -> float | None:
        return self.metric(name, group=GROUP, topic=tp.topic, partition=str(tp.partition))

    def blocked(self, tp: TopicPartition, reason: str) -> float | None:
        return self.metric("blocked_partitions", topic=tp.topic, partition=str(tp.partition), reason=reason)

    def committed(self, tp: TopicPartition) -> int | None:
        """The partition's committed offset in the group (through the consumer or a transaction)."""
        return self.consumer.committed_offsets.get(tp)

    def furthest_commit(self, tp: TopicPartition) -> int | None:
        """The highest offset ever committed for the partition through the consumer."""
        return max((c[tp] for c in self.consumer.commits if tp in c), default=None)

    async def commit_round(self) -> None:
        """One commit round of the guarantee now, as the engine's committer runs them, with every
        partition due (an exactly-once transaction commits as if its interval had passed)."""
        await self.engine.guarantee.commit(list(self.engine.lanes.values()), force=True)


@dataclass
class AtLeastOnceRig(Rig):
    sink: HeldSink

    def outputs(self, tp: TopicPartition) -> list[bytes | None]:
        """Outputs of `tp`'s records handed to the producer, in order."""
        return outputs_of(tp, self.sink.values())


@dataclass
class ExactlyOnceRig(Rig):
    kafka: FakeKafka

    def producer(self, tp: TopicPartition) -> FakeProducer:
        return self.kafka.current(txn(tp))

    def visible(self, tp: TopicPartition) -> list[bytes | None]:
        """Outputs of `tp`'s records that a read_committed consumer sees."""
        return outputs_of(tp, self.kafka.values("out"))

    def sent(self, tp: TopicPartition) -> list[bytes | None]:
        """Outputs of `tp`'s records sent by its latest producer, committed or not."""
        producers = self.kafka.producers_of(txn(tp))
        return outputs_of(tp, [o.value for o in producers[-1].sent] if producers else [])

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        return self.kafka.group(GROUP)

    async def assign(self, *partitions: TopicPartition) -> None:
        self.consumer.assigned.update(partitions)
        await self.engine.assigned(set(partitions))

    async def revoke(self, *partitions: TopicPartition) -> None:
        await self.engine.revoked(set(partitions))
        self.consumer.assigned.difference_update(partitions)


def txn(tp: TopicPartition) -> str:
    return transactional_id(APP, tp)


# Fast rounds for tests: commits every few milliseconds, short backoffs.
FAST = {
    "commit_interval_ms": 5,
    "backoff_ms": 5,
    "max_backoff_ms": 20,
    "max_in_flight": 16,
    "drain_timeout_s": 2.0,
}


class Engines:
    """Builds the engines of one test, and closes them at its end."""

    def __init__(self, *, eager: bool = False) -> None:
        self.eager = eager
        self._built: list[DeliveryEngine] = []

    def _engine(
        self,
        handler: RecordHandler,
        guarantee: Guarantee,
        consumer: FakeConsumer | None,
        gate: DelayGate | None,
        settings: dict[str, Any],
    ) -> tuple[DeliveryEngine, CollectorRegistry]:
        registry = CollectorRegistry()
        metrics = PipelineMetrics(registry, "t")
        if self.eager and not hasattr(handler, "now"):
            handler = Immediate(handler)
        engine = DeliveryEngine(
            handler,
            guarantee,
            metrics=metrics,
            settings=EngineSettings(**{**FAST, "eager": self.eager, **settings}),
            gate=gate,
            consumer=lambda: consumer,
        )
        metrics.watch_flow(GROUP, engine.flow)
        self._built.append(engine)
        return engine, registry

    def at_least_once(
        self,
        handler: RecordHandler = echo,
        *,
        assigned: Iterable[TopicPartition] = (TP0, TP1),
        gate: DelayGate | None = None,
        started: bool = True,
        **settings: Any,
    ) -> AtLeastOnceRig:
        """An at-least-once engine; not `started`, its consumer is not there yet (None)."""
        sink = HeldSink()
        consumer = FakeConsumer(assigned)
        engine, registry = self._engine(
            handler, AtLeastOnce(sink), consumer if started else None, gate, settings
        )
        return AtLeastOnceRig(engine, consumer, registry, sink)

    async def exactly_once(
        self,
        handler: RecordHandler = echo,
        *,
        kafka: FakeKafka | None = None,
        build: Callable[[str], FakeProducer] | None = None,
        assign: Iterable[TopicPartition] = (TP0, TP1),
        commit_interval_ms: int = 60_000,
        commit_timeout_ms: int = 30_000,
        **settings: Any,
    ) -> ExactlyOnceRig:
        """An exactly-once engine with `assign` assigned. Its transactions commit when the test says
        (`commit_round`), at a revocation or a drain, unless `commit_interval_ms` is made short."""
        kafka = kafka or FakeKafka()
        guarantee = ExactlyOnce(
            PartitionProducers(build or kafka.build, app_id=APP, topics=["out"]),
            group_id=GROUP,
            commit_interval_ms=commit_interval_ms,
            commit_timeout_ms=commit_timeout_ms,
        )
        consumer = FakeConsumer(committed=kafka.group(GROUP))
        engine, registry = self._engine(handler, guarantee, consumer, None, settings)
        rig = ExactlyOnceRig(engine, consumer, registry, kafka)
        await rig.assign(*assign)
        return rig

    async def close(self) -> None:
        for engine in self._built:
            await engine.close()
