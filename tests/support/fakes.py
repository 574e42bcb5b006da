"""In-memory stand-ins for the Kafka clients the messaging layer drives, for fast unit tests.

Each fake implements only the part of the aiokafka API that `kafka_delivery` calls, and
keeps what a user of the real thing would see: records sent (and, for transactions, those made
visible by a commit), committed offsets, seeks, pauses and resumes. Failures are injected per
record (`Faults`), the way a broker fails one produce request and not the next.
"""

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, ProducerFenced
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from kafka_delivery.types import Headers, OutgoingRecord

TIMESTAMP = 1_700_000_000_000


def record(
    topic: str = "in",
    partition: int = 0,
    offset: int = 0,
    *,
    key: bytes | None = b"key",
    value: bytes | None = b"value",
    headers: Sequence[tuple[str, bytes]] = (),
    timestamp: int = TIMESTAMP,
) -> Any:
    """A record as aiokafka's consumer returns it."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=-1 if key is None else len(key),
        serialized_value_size=-1 if value is None else len(value),
        headers=list(headers),
    )


def records(topic: str, partition: int, offsets: Iterable[int]) -> list[Any]:
    """Consecutive records of one partition; the value names the coordinates: b"in-0@3"."""
    return [
        record(
            topic,
            partition,
            offset,
            key=f"k{partition}".encode(),
            value=f"{topic}-{partition}@{offset}".encode(),
        )
        for offset in offsets
    ]


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll `condition` every few milliseconds; fail after `timeout` seconds (a loaded machine is slow)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.002)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    """The value of one metric sample as a scrape would show it; None when the series does not exist."""
    value: float | None = registry.get_sample_value(name, labels)
    return value


# --- failures ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Fault:
    error: BaseException
    where: Callable[[OutgoingRecord], bool]
    times: int | None


class Faults:
    """Errors to raise for the records that match, each a number of times or for good."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []

    def add(
        self,
        error: BaseException,
        *,
        where: Callable[[OutgoingRecord], bool] = lambda _: True,
        times: int | None = None,
    ) -> None:
        self._faults.append(_Fault(error, where, times))

    def clear(self) -> None:
        self._faults.clear()

    def take(self, record: OutgoingRecord) -> BaseException | None:
        for fault in self._faults:
            if fault.where(record):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault.error
        return None


def value_is(value: bytes) -> Callable[[OutgoingRecord], bool]:
    return lambda r: r.value == value


class _Acks:
    """Futures resolved on a later loop iteration, as broker acks are; optionally in reverse order."""

    def __init__(self, order: Literal["sent", "reversed"]) -> None:
        self._order = order
        self._pending: list[tuple[asyncio.Future[Any], BaseException | None]] = []

    def ack(self, error: BaseException | None) -> "asyncio.Future[Any]":
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((future, error))
        return future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for future, error in reversed(pending) if self._order == "reversed" else pending:
            if future.done():
                continue
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result(None)


# --- at-least-once sink ----------------------------------------------------------------------


class FakeSink:
    """A RecordSink: records what is handed to it; acks succeed unless a fault says otherwise.

    `send_failures` make send() itself raise (the producer refused the record); `ack_failures`
    make the returned future fail (the broker did not acknowledge it).
    """

    def __init__(self, *, ack_order: Literal["sent", "reversed"] = "sent") -> None:
        self.sent: list[OutgoingRecord] = []
        self.acked: list[OutgoingRecord] = []
        self.send_failures = Faults()
        self.ack_failures = Faults()
        self._acks = _Acks(ack_order)

    def send(self, record: OutgoingRecord) -> "asyncio.Future[Any]":
        if (error := self.send_failures.take(record)) is not None:
            raise error
        self.sent.append(record)
        future = self._acks.ack(self.ack_failures.take(record))
        future.add_done_callback(
            lambda f: self.acked.append(record) if not f.cancelled() and f.exception() is None else None
        )
        return future

    def values(self, topic: str | None = None) -> list[bytes | None]:
        return [r.value for r in self.sent if topic is None or r.topic == topic]


# --- consumer --------------------------------------------------------------------------------


class _Metadata:
    """The consumer's client: the cluster's metadata is the topics the consumer knows."""

    def __init__(self, consumer: "FakeConsumer") -> None:
        self._consumer = consumer

    async def fetch_all_metadata(self) -> "FakeConsumer":
        return self._consumer  # answers partitions_for_topic


class FakeConsumer:
    """An AIOKafkaConsumer's partition state: assignment, positions, pauses, commits.

    `committed_offsets` may be shared with a FakeKafka group, so that offsets committed in a
    transaction are what `committed()` returns. For reading, `log` holds the records of each
    partition; offsets it skips are transaction markers (or aborted records), which move the
    position without a record, and `ends` may lie past the last record for the same reason.
    """

    def __init__(
        self,
        assigned: Iterable[TopicPartition] = (),
        *,
        committed: dict[TopicPartition, int] | None = None,
        beginning: Mapping[TopicPartition, int] | None = None,
        ends: Mapping[TopicPartition, int] | None = None,
        log: Iterable[Any] = (),
    ) -> None:
        self.assigned: set[TopicPartition] = set(assigned)
        self.committed_offsets: dict[TopicPartition, int] = {} if committed is None else committed
        self.beginning: dict[TopicPartition, int] = dict(beginning or {})
        self.ends: dict[TopicPartition, int] = dict(ends or {})
        self.highwaters: dict[TopicPartition, int] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.paused: set[TopicPartition] = set()
        self.pauses: list[TopicPartition] = []
        self.resumes: list[TopicPartition] = []
        self.resumed_at: dict[TopicPartition, float] = {}  # wall-clock time of the last resume
        self.commits: list[dict[TopicPartition, int]] = []
        self.commit_errors: list[BaseException] = []
        self.rewind_errors: list[BaseException] = []
        self.committed_errors: list[BaseException] = []
        # Reading (kafka_io): the records per partition, and partitions whose fetches never return.
        self.log: dict[TopicPartition, list[Any]] = {}
        for rec in log:
            self.log.setdefault(TopicPartition(rec.topic, rec.partition), []).append(rec)
        self.stuck: set[TopicPartition] = set()
        self.fetches = 0
        self._client = _Metadata(self)

    def _check(self, tp: TopicPartition) -> None:
        if tp not in self.assigned:
            raise IllegalStateError(f"No current assignment for partition {tp}")

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._check(tp)
        self.seeks.append((tp, offset))
        self.positions[tp] = offset

    def pause(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._check(tp)
            self.paused.add(tp)
            self.pauses.append(tp)

    def resume(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._check(tp)
            self.paused.discard(tp)
            self.resumes.append(tp)
            self.resumed_at[tp] = time.time()

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        assert offsets is not None, "the pipelines always commit explicit offsets"
        for tp in offsets:
            self._check(tp)
        self.commits.append(dict(offsets))
        self.committed_offsets.update(offsets)

    async def committed(self, tp: TopicPartition) -> int | None:
        if self.committed_errors:
            raise self.committed_errors.pop(0)
        return self.committed_offsets.get(tp)

    async def seek_to_committed(self, *partitions: TopicPartition) -> dict[TopicPartition, int | None]:
        if self.rewind_errors:
            raise self.rewind_errors.pop(0)
        result: dict[TopicPartition, int | None] = {}
        for tp in partitions:
            self._check(tp)
            result[tp] = offset = self.committed_offsets.get(tp)
            if offset is not None:
                self.seek(tp, offset)
        return result

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.seek(tp, self.beginning.get(tp, 0))

    async def position(self, tp: TopicPartition) -> int:
        self._check(tp)
        return self.positions.get(tp, self.committed_offsets.get(tp, self.beginning.get(tp, 0)))

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.beginning.get(tp, 0) for tp in partitions}

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end_of(tp) for tp in partitions}

    def end_of(self, tp: TopicPartition) -> int:
        if tp in self.ends:
            return self.ends[tp]
        records = self.log.get(tp)
        return records[-1].offset + 1 if records else 0

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        known = {tp.partition for tp in [*self.log, *self.ends, *self.beginning] if tp.topic == topic}
        return known or None

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self.assigned = set(partitions)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        """The records from each position on, at most `max_records` in all; positions move past them,
        and past trailing markers when no record is left."""
        self.fetches += 1
        budget = max_records or 1 << 62
        batches: dict[TopicPartition, list[Any]] = {}
        for tp in partitions or sorted(self.assigned):
            if tp not in self.assigned or tp in self.paused or tp in self.stuck:
                continue
            position = await self.position(tp)
            ready = [r for r in self.log.get(tp, []) if r.offset >= position][:budget]
            if ready:
                batches[tp] = ready
                budget -= len(ready)
                self.positions[tp] = ready[-1].offset + 1
            elif position < self.end_of(tp):
                self.positions[tp] = self.end_of(tp)
        if not batches:
            await asyncio.sleep(min(timeout_ms / 1000, 0.002))
        return batches


# --- producers and transactions --------------------------------------------------------------


@dataclass(slots=True)
class FakeKafka:
    """The broker side of producers: what became visible, committed group offsets, and fencing.

    A transactional producer that initialises (wait_for_pid) fences the previous producer with the
    same transactional.id and aborts its open transaction, as Kafka's coordinator does.
    """

    records: list[OutgoingRecord] = field(default_factory=list)
    aborted: list[OutgoingRecord] = field(default_factory=list)
    offsets: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    producers: list["FakeProducer"] = field(default_factory=list)
    start_failures: dict[str | None, list[BaseException]] = field(default_factory=dict)
    # transactional.id -> a gate its producers' initialisation waits on (a slow InitProducerId).
    pid_gates: dict[str, asyncio.Event] = field(default_factory=dict)
    # Records per batch of the producers it builds (see FakeProducer).
    batch_records: int = 1
    _current: dict[str, "FakeProducer"] = field(default_factory=dict)

    def group(self, group_id: str) -> dict[TopicPartition, int]:
        """The committed offsets of a group (pass it to FakeConsumer(committed=...))."""
        return self.offsets.setdefault(group_id, {})

    def build(self, transactional_id: str | None = None) -> "FakeProducer":
        producer = FakeProducer(self, transactional_id, batch_records=self.batch_records)
        self.producers.append(producer)
        return producer

    def producers_of(self, transactional_id: str) -> list["FakeProducer"]:
        return [p for p in self.producers if p.transactional_id == transactional_id]

    def current(self, transactional_id: str) -> "FakeProducer":
        """The producer that owns the transactional.id now."""
        return self._current[transactional_id]

    def fence(self, transactional_id: str) -> None:
        """Another instance initialised a producer with this transactional.id."""
        if (old := self._current.pop(transactional_id, None)) is not None:
            old.fence()

    def values(self, topic: str | None = None) -> list[bytes | None]:
        return [r.value for r in self.records if topic is None or r.topic == topic]

    def _init_pid(self, producer: "FakeProducer") -> None:
        assert producer.transactional_id is not None
        if (old := self._current.get(producer.transactional_id)) is not None and old is not producer:
            old.fence()
        self._current[producer.transactional_id] = producer


class _TxnManager:
    def __init__(self, producer: "FakeProducer") -> None:
        self._producer = producer

    async def wait_for_pid(self) -> None:
        kafka, tid = self._producer.kafka, self._producer.transactional_id
        if tid is not None and (gate := kafka.pid_gates.get(tid)) is not None:
            await gate.wait()
        kafka._init_pid(self._producer)


class _ProducerMetadata:
    """What a producer knows of the topics it writes to: each has `partitions` partitions, except
    those `unknown` until waited on, and those whose wait fails with `failures`."""

    def __init__(self, partitions: int) -> None:
        self.cluster = self
        self.partitions = partitions
        self.unknown: set[str] = set()
        self.failures: dict[str, BaseException] = {}
        self.metadata_waits: list[str] = []

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return None if topic in self.unknown else set(range(self.partitions))

    async def _wait_on_metadata(self, topic: str) -> set[int] | None:
        self.metadata_waits.append(topic)
        await asyncio.sleep(0)
        if (failure := self.failures.get(topic)) is not None:
            raise failure
        self.unknown.discard(topic)
        return self.partitions_for_topic(topic)


class FakeBatch:
    """A producer's batch builder, holding up to `capacity` records."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes | None, bytes | None, Headers]] = []
        self._closed = False

    def append(
        self, *, timestamp: int | None, key: bytes | None, value: bytes | None, headers: Headers
    ) -> Any:
        if self._closed or len(self.records) >= self.capacity:
            self._closed = True
            return None
        self.records.append((key, value, list(headers)))
        return len(self.records)

    def close(self) -> None:
        self._closed = True

    def closed(self) -> bool:
        return self._closed

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    """An AIOKafkaProducer, transactional when it has a transactional.id.

    Outside a transaction an acked record is visible at once; inside one, at commit. `send_failures`
    make send() raise, `ack_failures` fail the future it returns, `commit_errors` fail
    commit_transaction(), and `commit_hangs` makes it never return (a coordinator that does not answer).

    Batches (create_batch, send_batch) hold `batch_records` records each, one by default: a fault
    then fails one record, as with send(). A batch fails as a whole when any of its records has a fault.
    """

    def __init__(
        self, kafka: FakeKafka, transactional_id: str | None = None, *, batch_records: int = 1
    ) -> None:
        self.kafka = kafka
        self.transactional_id = transactional_id
        self.started = self.stopped = self.fenced = False
        self.in_transaction = False
        self.transactions: list[Literal["committed", "aborted"]] = []
        self.sent: list[OutgoingRecord] = []
        self.send_failures = Faults()
        self.ack_failures = Faults()
        self.commit_errors: list[BaseException] = []
        self.commit_hangs = False
        self._pending: list[OutgoingRecord] = []
        self._pending_offsets: dict[str, dict[TopicPartition, int]] = {}
        self._acks = _Acks("sent")
        self._txn_manager = _TxnManager(self)
        self.client = _ProducerMetadata(partitions=1)
        self._max_request_size = 1024 * 1024
        self.batch_records = batch_records
        self.batches: list[FakeBatch] = []

    async def start(self) -> None:
        if failures := self.kafka.start_failures.get(self.transactional_id):
            raise failures.pop(0)
        self.started = True

    async def stop(self) -> None:
        self.stopped = True
        if self.in_transaction:
            self._end("aborted")

    def fence(self) -> None:
        self.fenced = True
        if self.in_transaction:
            self._end("aborted")

    def _usable(self) -> None:
        if self.fenced:
            raise ProducerFenced()
        if not self.started or self.stopped:
            raise IllegalStateError("producer is not running")

    async def begin_transaction(self) -> None:
        self._usable()
        assert self.transactional_id is not None
        assert not self.in_transaction
        self.in_transaction = True

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> "asyncio.Future[Any]":
        self._usable()
        if self.transactional_id is not None and not self.in_transaction:
            raise IllegalStateError("send outside a transaction")
        out = OutgoingRecord(topic=topic, value=value, key=key, headers=list(headers or []))
        if (error := self.send_failures.take(out)) is not None:
            raise error
        self.sent.append(out)
        error = self.ack_failures.take(out)
        if error is None:
            (self._pending if self.in_transaction else self.kafka.records).append(out)
        return self._acks.ack(error)

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_records)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> "asyncio.Future[Any]":
        self._usable()
        if self.transactional_id is not None and not self.in_transaction:
            raise IllegalStateError("send outside a transaction")
        outs = [OutgoingRecord(topic=topic, value=v, key=k, headers=h) for k, v, h in batch.records]
        for out in outs:
            if (error := self.send_failures.take(out)) is not None:
                raise error
        self.batches.append(batch)
        self.sent.extend(outs)
        error = next((e for out in outs if (e := self.ack_failures.take(out)) is not None), None)
        if error is None:
            (self._pending if self.in_transaction else self.kafka.records).extend(outs)
        return self._acks.ack(error)

    async def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_id: str) -> None:
        self._usable()
        assert self.in_transaction
        self._pending_offsets.setdefault(group_id, {}).update(offsets)

    async def commit_transaction(self) -> None:
        if self.commit_hangs:
            await asyncio.Event().wait()
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self._usable()
        assert self.in_transaction
        self._end("committed")

    def _end(self, outcome: Literal["committed", "aborted"]) -> None:
        if outcome == "committed":
            self.kafka.records.extend(self._pending)
            for group, offsets in self._pending_offsets.items():
                self.kafka.group(group).update(offsets)
        else:
            self.kafka.aborted.extend(self._pending)
        self._pending, self._pending_offsets = [], {}
        self.in_transaction = False
        self.transactions.append(outcome)


# --- cluster metadata, for the readiness probe ------------------------------------------------


class FakeCluster:
    def __init__(self, topics: Mapping[str, int], leaders: Mapping[TopicPartition, int]) -> None:
        self.topics = dict(topics)
        self.leaders = dict(leaders)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        count = self.topics.get(topic)
        return None if count is None else set(range(count))

    def leader_for_partition(self, tp: TopicPartition) -> int | None:
        return self.leaders.get(tp)


class FakeClient:
    """An AIOKafkaClient's metadata view: topics, leaders, coordinators, and which nodes answer."""

    def __init__(
        self,
        *,
        topics: Mapping[str, int],
        leaders: Mapping[TopicPartition, int] | None = None,
        coordinators: Mapping[tuple[int, str], int] | None = None,
    ) -> None:
        self.cluster = FakeCluster(topics, leaders or {})
        self.coordinators = dict(coordinators or {})
        self.down: set[int] = set()
        self.metadata_errors: list[BaseException] = []
        self.bootstrapped = self.closed = False
        self.metadata_requests = 0

    async def bootstrap(self) -> None:
        self.bootstrapped = True

    async def force_metadata_update(self) -> bool:
        self.metadata_requests += 1
        if self.metadata_errors:
            raise self.metadata_errors.pop(0)
        return True

    async def ready(self, node_id: int) -> bool:
        return node_id not in self.down

    async def coordinator_lookup(self, kind: int, key: str) -> int:
        return self.coordinators.get((kind, key), 0)

    async def close(self) -> None:
        self.closed = True


# --- admin client, for topic provisioning -----------------------------------------------------


@dataclass(slots=True)
class _CreateTopicsResponse:
    topic_errors: list[tuple[str, int, str | None]]


@dataclass(slots=True)
class _DescribeConfigsResponse:
    resources: list[tuple[int, str | None, int, str, list[tuple[str, str]]]]


class FakeAdmin:
    """An AIOKafkaAdminClient's topic calls: topics with their configs, and per-topic error codes.

    `create_errors` answer a create request for a topic with an error code (and message);
    `describe_errors` answer describe-configs the same way, a number of times each.
    """

    def __init__(self, topics: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.topics: dict[str, dict[str, str]] = {name: dict(c) for name, c in (topics or {}).items()}
        self.created: list[Any] = []
        self.create_errors: dict[str, tuple[int, str | None]] = {}
        self.describe_errors: dict[str, list[tuple[int, str | None]]] = {}

    async def list_topics(self) -> list[str]:
        return list(self.topics)

    async def create_topics(self, new_topics: Sequence[Any]) -> _CreateTopicsResponse:
        errors: list[tuple[str, int, str | None]] = []
        for topic in new_topics:
            self.created.append(topic)
            code, message = self.create_errors.get(topic.name, (0, None))
            if code == 0:
                self.topics[topic.name] = dict(topic.topic_configs or {})
            errors.append((topic.name, code, message))
        return _CreateTopicsResponse(errors)

    async def describe_configs(self, resources: Sequence[Any]) -> list[_DescribeConfigsResponse]:
        answers: list[tuple[int, str | None, int, str, list[tuple[str, str]]]] = []
        for resource in resources:
            if failures := self.describe_errors.get(resource.name):
                code, message = failures.pop(0)
                answers.append((code, message, 2, resource.name, []))
            else:
                answers.append((0, None, 2, resource.name, sorted(self.topics[resource.name].items())))
        return [_DescribeConfigsResponse(answers)]
