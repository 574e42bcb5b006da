"""Kafka side of the chaos run: the input, a paced producer that rides out broker faults, the group's
committed progress, who leads and who coordinates, and a fallback reconciliation by order id.

Every call that talks to Kafka is bounded: a broker that is dead or frozen (SIGSTOP) must cost a
sample or a retry, never a hang.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, for_code
from aiokafka.partitioner import DefaultPartitioner

from order_service.cli.samples import encode, malformed_corpus, sample_order

PARTITIONS = 6
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
MALFORMED_EVERY = 100  # 1 %
GROUP_COORDINATOR, TRANSACTION_COORDINATOR = 0, 1
CALL_TIMEOUT_S = 5.0

Record = tuple[bytes, bytes | None]  # key, value
T = TypeVar("T")
log = logging.getLogger("bench.chaos")


def hosts(bootstrap: str) -> list[str]:
    return [h.strip() for h in bootstrap.split(",") if h.strip()]


def orders(count: int, *, prefix: str, seed: int = 11) -> list[Record]:
    """`count` keyed orders; every 100th (1 %) is one of the malformed corpus, in turn."""
    rng = random.Random(seed)
    corpus = malformed_corpus()
    records: list[Record] = []
    for i in range(count):
        if i % MALFORMED_EVERY == MALFORMED_EVERY // 2:
            bad = corpus[(i // MALFORMED_EVERY) % len(corpus)]
            records.append((f"{prefix}-bad-{i:08d}".encode(), bad.value))
        else:
            order = sample_order(i, rng, prefix=prefix)
            records.append((str(order["order_id"]).encode(), encode(order)))
    return records


async def bounded(call: Awaitable[T], seconds: float = CALL_TIMEOUT_S) -> T:
    async with asyncio.timeout(seconds):
        return await call


async def retrying(
    call: Callable[[], Awaitable[T]], *, what: str, timeout: float, interval: float = 1.0
) -> T:
    """`call()` until it succeeds (each try bounded); the last error once `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await bounded(call())
        except (KafkaError, OSError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: no success within {timeout:.0f}s, last error {exc!r}") from exc
        await asyncio.sleep(interval)


async def _close(client: Any) -> None:
    stop = client.close if isinstance(client, AIOKafkaAdminClient | AIOKafkaClient) else client.stop
    with contextlib.suppress(Exception):
        await bounded(stop())


# --- topics and cluster metadata ------------------------------------------------------------------


async def create_input_topic(bootstrap: str, name: str) -> None:
    """6 partitions, replication factor 3, min.insync.replicas 2; waits until every partition has a leader."""

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=hosts(bootstrap), request_timeout_ms=10_000)
        try:
            await admin.start()
            response = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        PARTITIONS,
                        REPLICATION_FACTOR,
                        topic_configs={"min.insync.replicas": str(MIN_INSYNC_REPLICAS)},
                    )
                ]
            )
            for topic, code, *_ in response.topic_errors:
                if code and for_code(code).__name__ != "TopicAlreadyExistsError":
                    raise for_code(code)(f"creating {topic}")
        finally:
            await _close(admin)

    await retrying(create, what=f"create topic {name}", timeout=60)

    async def led() -> bool:
        return len((await leaders(bootstrap, name)).keys()) == PARTITIONS

    deadline = time.monotonic() + 60
    while not await _quietly(led, default=False):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name}: not every partition has a leader after 60s")
        await asyncio.sleep(0.5)


async def _quietly(call: Callable[[], Awaitable[T]], *, default: T) -> T:
    try:
        return await bounded(call())
    except (KafkaError, OSError, TimeoutError):
        return default


async def _with_client(bootstrap: str, use: Callable[[AIOKafkaClient], Awaitable[T]]) -> T:
    client = AIOKafkaClient(bootstrap_servers=hosts(bootstrap), request_timeout_ms=5_000)
    try:
        await bounded(client.bootstrap())
        return await bounded(use(client))
    finally:
        await _close(client)


async def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> id of its leader broker (partitions without a live leader are left out)."""

    async def use(client: AIOKafkaClient) -> dict[int, int]:
        await client.force_metadata_update()
        found: dict[int, int] = {}
        for p in client.cluster.partitions_for_topic(topic) or ():
            leader = client.cluster.leader_for_partition(TopicPartition(topic, p))
            if leader is not None and leader >= 0:
                found[p] = leader
        return found

    return await _with_client(bootstrap, use)


async def coordinators(bootstrap: str, kind: int, keys: Sequence[str]) -> dict[str, int]:
    """FindCoordinator: key (group id, or transactional id) -> broker id."""

    async def use(client: AIOKafkaClient) -> dict[str, int]:
        return {key: int(await client.coordinator_lookup(kind, key)) for key in keys}

    return await _with_client(bootstrap, use)


async def under_replicated(bootstrap: str) -> list[str]:
    """Partitions of every topic (internal ones included) whose ISR is smaller than their replica set."""

    async def describe() -> list[Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=hosts(bootstrap), request_timeout_ms=5_000)
        try:
            await admin.start()
            topics: list[Any] = await admin.describe_topics()
            return topics
        finally:
            await _close(admin)

    short = []
    for topic in await bounded(describe(), 10):
        for p in topic["partitions"]:
            if len(p["isr"]) < len(p["replicas"]):
                short.append(f"{topic['topic']}-{p['partition']}")
    return short


# --- the group's progress ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offsets:
    committed: dict[int, int]  # partition -> committed offset (0 when none yet)
    end: dict[int, int]
    stale: frozenset[int] = frozenset()  # partitions whose end offset is the last one known

    @property
    def committed_total(self) -> int:
        return sum(self.committed.values())

    @property
    def end_total(self) -> int:
        return sum(self.end.values())

    @property
    def drained(self) -> bool:
        return not self.stale and all(self.committed.get(p, 0) >= end for p, end in self.end.items())

    def reached(self, ends: dict[int, int]) -> bool:
        return all(self.committed.get(p, 0) >= end for p, end in ends.items())


class Progress:
    """The group's committed offsets and the end offsets of the input, each request bounded.

    The committed offsets come from the group coordinator (cached, looked up again after a
    failure); the end offsets are asked per partition, so that a partition whose leader is gone
    keeps its last known end instead of spoiling the sample. Clients are rebuilt after a few
    failures in a row (a client whose broker died may keep a dead connection).
    """

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._coordinator: int | None = None
        self._ends: dict[int, int] = {}
        self._known: dict[int, int] = {}
        self._failures = 0

    async def sample(self, timeout: float = 5.0) -> Offsets | None:
        """None when the committed offsets could not be read within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout + 1):
                admin, consumer = await self._clients()
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._failed(exc)
            return None
        committed, ends = await asyncio.gather(
            self._committed(admin, timeout),
            asyncio.gather(*(self._end(consumer, tp, min(timeout, 3.0)) for tp in self.partitions)),
        )
        if isinstance(committed, BaseException):
            await self._failed(committed)
            return None
        offsets = {tp.partition: meta.offset for tp, meta in committed.items()}
        if any(offsets.get(partition, -1) < 0 for partition in self._known):
            # No offset where there was one: a coordinator that is still loading the offsets topic
            # answers with none (aiokafka's admin client does not check OffsetFetch's top-level
            # error). Not a sample.
            return None
        self._known.update({tp.partition: meta.offset for tp, meta in committed.items() if meta.offset >= 0})
        self._failures = 0
        stale = frozenset(tp.partition for tp, end in zip(self.partitions, ends, strict=True) if end is None)
        for tp, end in zip(self.partitions, ends, strict=True):
            if end is not None:
                self._ends[tp.partition] = end
        return Offsets(
            committed={tp.partition: max(0, meta.offset) for tp, meta in committed.items()},
            end={tp.partition: self._ends.get(tp.partition, 0) for tp in self.partitions},
            stale=stale,
        )

    async def _committed(
        self, admin: AIOKafkaAdminClient, timeout: float
    ) -> dict[TopicPartition, Any] | BaseException:
        try:
            async with asyncio.timeout(timeout):
                if self._coordinator is None:
                    self._coordinator = await admin.find_coordinator(self.group)
                found: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(
                    self.group, group_coordinator_id=self._coordinator, partitions=self.partitions
                )
                return found
        except (KafkaError, OSError, TimeoutError) as exc:
            self._coordinator = None
            return exc

    async def _end(self, consumer: AIOKafkaConsumer, tp: TopicPartition, timeout: float) -> int | None:
        try:
            async with asyncio.timeout(timeout):
                end: int = (await consumer.end_offsets([tp]))[tp]
                return end
        except (KafkaError, OSError, TimeoutError):
            return None

    async def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        log.debug("progress sample failed: %r", exc)
        if self._failures >= 10:  # a client whose broker died may hold on to a dead connection
            await self.close()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            await self.close()
            admin = AIOKafkaAdminClient(bootstrap_servers=hosts(self.bootstrap), request_timeout_ms=5_000)
            consumer = AIOKafkaConsumer(
                bootstrap_servers=hosts(self.bootstrap),
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=5_000,
            )
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await _close(admin)
                await _close(consumer)
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        self._failures = 0
        self._coordinator = None
        if admin is not None:
            await _close(admin)
        if consumer is not None:
            await _close(consumer)


# --- the paced producer ------------------------------------------------------------------------------


@dataclass
class Production:
    """What the producer did: records acknowledged, sends that failed and were sent again."""

    total: int
    acked: int = 0
    resent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    started_at: float | None = None
    finished_at: float | None = None
    producers_created: int = 0

    @property
    def done(self) -> bool:
        return self.acked >= self.total


@dataclass(frozen=True, slots=True)
class _Pending:
    index: int
    future: "asyncio.Future[Any]"
    generation: int


class PacedProducer:
    """Sends `records` at an even pace over `seconds`, one sending task per partition, so that a
    partition whose leader is down holds only itself. A send that fails (timeout, not enough
    replicas, ...) is sent again until it is acknowledged: an input may then be written twice,
    which only adds an input; nothing the run counts on is lost. Idempotent, acks=all.
    """

    def __init__(self, bootstrap: str, topic: str, records: Sequence[Record], *, seconds: float) -> None:
        self.bootstrap, self.topic, self.records = bootstrap, topic, records
        self.rate = len(records) / max(seconds, 0.001)
        self.production = Production(total=len(records))
        self._producer: AIOKafkaProducer | None = None
        self._generation = 0
        self._dropped: set[int] = set()
        self._lock = asyncio.Lock()
        partitioner = DefaultPartitioner()
        everything = list(range(PARTITIONS))
        self._by_partition: dict[int, list[int]] = defaultdict(list)
        for i, (key, _) in enumerate(records):
            self._by_partition[partitioner(key, everything, everything)].append(i)

    async def run(self, *, timeout: float) -> Production:
        """Until every record is acknowledged; TimeoutError after `timeout` seconds."""
        self.production.started_at = start = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(
                    *(self._partition(p, indexes, start) for p, indexes in self._by_partition.items())
                )
        finally:
            self.production.finished_at = time.monotonic()
            producer, self._producer = self._producer, None
            if producer is not None:
                await _close(producer)
        return self.production

    async def _partition(self, partition: int, indexes: list[int], start: float) -> None:
        pending: list[_Pending] = []
        for i in indexes:
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(await self._send(i, partition))
            if len(pending) >= 200:
                pending = await self._settle(pending, partition, wait=False)
        while pending:
            pending = await self._settle(pending, partition, wait=True)

    async def _settle(self, pending: list["_Pending"], partition: int, *, wait: bool) -> list["_Pending"]:
        if wait:
            await asyncio.wait([p.future for p in pending], timeout=5)
        still: list[_Pending] = []
        for entry in pending:
            future = entry.future
            if not future.done():
                if entry.generation in self._dropped:  # its producer is gone: it never completes
                    self.production.errors["dropped with its producer"] += 1
                    self.production.resent += 1
                    still.append(await self._send(entry.index, partition))
                else:
                    still.append(entry)
            elif future.cancelled() or future.exception() is not None:
                error = "cancelled" if future.cancelled() else type(future.exception()).__name__
                self.production.errors[error] += 1
                self.production.resent += 1
                still.append(await self._send(entry.index, partition))
        return still

    async def _send(self, i: int, partition: int) -> "_Pending":
        key, value = self.records[i]
        failures = 0
        while True:
            producer, generation = await self._current()
            try:
                future: asyncio.Future[Any] = await producer.send(
                    self.topic, value=value, key=key, partition=partition
                )
                future.add_done_callback(self._acked)
                return _Pending(i, future, generation)
            except KafkaError as exc:  # the partition's batch did not drain in time, or a fatal error
                self.production.errors[type(exc).__name__] += 1
                failures += 1
                if failures >= 3:
                    await self._replace(generation)
                    failures = 0
                await asyncio.sleep(0.5)

    def _acked(self, future: "asyncio.Future[Any]") -> None:
        if not future.cancelled() and future.exception() is None:
            self.production.acked += 1

    async def _current(self) -> tuple[AIOKafkaProducer, int]:
        async with self._lock:
            while self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=hosts(self.bootstrap),
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=5,
                    max_batch_size=256 * 1024,
                    request_timeout_ms=30_000,
                )
                try:
                    await bounded(producer.start(), 30)
                except (KafkaError, OSError, TimeoutError) as exc:
                    self.production.errors[f"start: {type(exc).__name__}"] += 1
                    await _close(producer)
                    await asyncio.sleep(1)
                    continue
                self._producer = producer
                self._generation += 1
                self.production.producers_created += 1
            return self._producer, self._generation

    async def _replace(self, generation: int) -> None:
        """Drop the producer of `generation` (if still current); the next send creates another."""
        async with self._lock:
            if self._generation == generation and self._producer is not None:
                old, self._producer = self._producer, None
                self._dropped.add(generation)
                await _close(old)


# --- fallback reconciliation, by order id ------------------------------------------------------------


@dataclass
class KeyReport:
    inputs: int = 0
    outputs: int = 0
    dead_letters: int = 0
    missing: int = 0
    duplicates: int = 0
    order_violations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": "fallback",
            "counts": {
                "inputs": self.inputs,
                "processed": self.outputs,
                "dead_lettered": self.dead_letters,
                "missing": self.missing,
                "duplicates": self.duplicates,
                "unmatched": 0,
                "order_violations": self.order_violations,
            },
            "records_read": {"input": self.inputs, "output": self.outputs, "dead_letter": self.dead_letters},
        }


async def _read_whole(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=hosts(bootstrap),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    records: list[Any] = []
    try:
        await bounded(consumer.start(), 30)
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            await bounded(consumer._client.force_metadata_update(), 30)
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await bounded(consumer.end_offsets(tps), 30)
        remaining = {tp for tp in tps if ends[tp] > 0}
        moved = time.monotonic()
        while remaining:
            batches = await bounded(consumer.getmany(*remaining, timeout_ms=500, max_records=20_000), 30)
            for batch in batches.values():
                records.extend(r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)])
                moved = time.monotonic()
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if time.monotonic() - moved > 60:
                raise TimeoutError(f"no progress reading {topic} for 60s")
    finally:
        await _close(consumer)
    return records


async def reconcile_by_key(bootstrap: str, input_topic: str, output: str, dead_letter: str) -> KeyReport:
    """Our own check when `order_service.cli.verify` cannot run: every input key (order id) must have as
    many outcomes (output or dead letter, read_committed) as it has input records, and per output
    partition the first outcomes of one input partition must follow input order."""
    inputs = await _read_whole(bootstrap, input_topic)
    outcomes = {name: await _read_whole(bootstrap, name) for name in (output, dead_letter)}
    report = KeyReport(
        inputs=len(inputs), outputs=len(outcomes[output]), dead_letters=len(outcomes[dead_letter])
    )
    wanted: Counter[bytes] = Counter(r.key for r in inputs)
    where: dict[bytes, tuple[int, int]] = {}
    for r in inputs:
        where.setdefault(r.key, (r.partition, r.offset))
    got: Counter[bytes] = Counter(r.key for records in outcomes.values() for r in records)
    report.missing = sum(max(0, n - got[k]) for k, n in wanted.items())
    report.duplicates = sum(max(0, n - wanted[k]) for k, n in got.items())
    for records in outcomes.values():
        highest: dict[tuple[int, int], int] = {}
        seen: set[bytes] = set()
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            if r.key in seen or r.key not in where:
                continue
            seen.add(r.key)
            in_partition, in_offset = where[r.key]
            lane = (r.partition, in_partition)
            if in_offset < highest.get(lane, -1):
                report.order_violations += 1
            highest[lane] = max(highest.get(lane, -1), in_offset)
    return report


def most_common(counts: Iterable[int], *, prefer: Sequence[int] = ()) -> int:
    """The broker id that occurs most often; ties go to the earlier one in `prefer`, then the lowest id."""
    tally = Counter(counts)
    rank = {node: i for i, node in enumerate(prefer)}
    return min(tally, key=lambda node: (-tally[node], rank.get(node, len(rank)), node))
