"""Reconciliation: does every input record have exactly one outcome, in input order?

An *outcome* is a record on the output topic, matched to its input by the `input.*` provenance
headers (retry.py), or a dead letter, matched by `dlq.original.*` (envelope.py). Hops to the
delayed retry topic are not outcomes; they only mark their input as *retried*, and the outcomes
of a retried input are exempt from the order check: the retry topic trades order for progress.

The matching is pure (`Reconciler`, `reconcile`) and works on small tuples, so that it is testable
without Kafka; `read_and_reconcile` streams real topics into it with aiokafka. Nothing here looks
at record values.

Memory: about 3 bytes per input offset in range and 16 bytes per outcome, so that a million
records fit in a few tens of megabytes.
"""

import asyncio
import time
from array import array
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from order_service.messaging.retry import (
    INPUT_OFFSET,
    INPUT_PARTITION,
    INPUT_TOPIC,
    INPUT_VIA,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_TOPIC,
)

DLQ_TOPIC = "dlq.original.topic"
DLQ_PARTITION = "dlq.original.partition"
DLQ_OFFSET = "dlq.original.offset"

_PRESENT = 1  # the input record was read
_RETRIED = 2  # it went through the retry topic
_SATURATED = 255  # outcome counters stop here


class Ref(NamedTuple):
    """Where a record is: topic, partition, offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class Kind(StrEnum):
    OUTPUT = "output"
    DEAD_LETTER = "dead_letter"


_OUTPUT = Kind.OUTPUT


class Outcome(NamedTuple):
    """An outcome record at `at`, naming `input` (None: it carries no provenance)."""

    kind: Kind
    at: Ref
    input: Ref | None
    retried: bool = False


# --- from records to tuples ---------------------------------------------------------------------------


def _named(
    headers: Mapping[str, bytes], topic: str, partition: str, offset: str
) -> tuple[str, int, int] | None:
    """The coordinates named by three headers; None when one is missing or unreadable."""
    try:
        return headers[topic].decode(), int(headers[partition]), int(headers[offset])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


def _ref(headers: Mapping[str, bytes], topic: str, partition: str, offset: str) -> Ref | None:
    named = _named(headers, topic, partition, offset)
    return None if named is None else Ref(*named)


def _at(record: Any) -> Ref:
    return Ref(record.topic, record.partition, record.offset)


def output_outcome(record: Any) -> Outcome:
    """An output record as an outcome: its `input.*` headers name the input (the last value wins)."""
    headers = dict(record.headers)
    named = _ref(headers, INPUT_TOPIC, INPUT_PARTITION, INPUT_OFFSET)
    return Outcome(Kind.OUTPUT, _at(record), named, retried=INPUT_VIA in headers)


def dead_letter_outcome(record: Any) -> Outcome:
    """A dead letter as an outcome: `dlq.original.*` names the input (the newest envelope wins)."""
    named = _ref(dict(record.headers), DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET)
    return Outcome(Kind.DEAD_LETTER, _at(record), named)


def retried_input(record: Any) -> Ref | None:
    """The input a retry-topic hop came from (`retry.original.*`)."""
    return _ref(dict(record.headers), ORIGINAL_TOPIC, ORIGINAL_PARTITION, ORIGINAL_OFFSET)


# --- the report -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """An offending input and the outcomes that name it."""

    input: Ref
    outcomes: tuple[Ref, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"input": self.input.as_dict(), "outcomes": [o.as_dict() for o in self.outcomes]}


@dataclass(frozen=True, slots=True)
class OrderViolation:
    """`outcome` (for `input`) came after an outcome of a later input of the same partition."""

    outcome: Ref
    input: Ref
    after_offset: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.as_dict(),
            "input": self.input.as_dict(),
            "after_input_offset": self.after_offset,
        }


@dataclass(frozen=True, slots=True)
class Stray:
    """An outcome that names no input in range: elsewhere (information), or nothing at all."""

    outcome: Ref
    input: Ref | None

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.as_dict(), "input": self.input.as_dict() if self.input else None}


@dataclass(slots=True)
class Report:
    """What the reconciliation found. The lists hold the first few offenders; the counts all of them."""

    ranges: dict[tuple[str, int], tuple[int, int]]
    inputs: int = 0
    processed: int = 0
    dead_lettered: int = 0
    retried: int = 0
    outputs_read: int = 0
    dead_letters_read: int = 0
    retry_hops_read: int = 0
    retry_topic_read: bool = False
    missing: int = 0
    duplicates: int = 0
    unmatched: int = 0
    order_violations: int = 0
    outside_range: int = 0
    unattributed: int = 0
    missing_list: list[Ref] = field(default_factory=list)
    duplicate_list: list[Listed] = field(default_factory=list)
    unmatched_list: list[Listed] = field(default_factory=list)
    order_violation_list: list[OrderViolation] = field(default_factory=list)
    outside_range_list: list[Stray] = field(default_factory=list)
    unattributed_list: list[Stray] = field(default_factory=list)

    def violations(self, *, allow_duplicates: bool = False) -> int:
        """Findings that break "exactly one outcome per input, in order"; strays outside are not."""
        duplicates = 0 if allow_duplicates else self.duplicates
        return self.missing + duplicates + self.unmatched + self.order_violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "ranges": [
                {"topic": topic, "partition": partition, "from_offset": start, "end_offset": end}
                for (topic, partition), (start, end) in sorted(self.ranges.items())
            ],
            "records_read": {
                "input": self.inputs,
                "output": self.outputs_read,
                "dead_letter": self.dead_letters_read,
                "retry": self.retry_hops_read,
            },
            "counts": {
                "inputs": self.inputs,
                "processed": self.processed,
                "dead_lettered": self.dead_lettered,
                "retried": self.retried,
                "missing": self.missing,
                "duplicates": self.duplicates,
                "unmatched": self.unmatched,
                "order_violations": self.order_violations,
                "outside_range": self.outside_range,
                "unattributed": self.unattributed,
            },
            "missing": [ref.as_dict() for ref in self.missing_list],
            "duplicates": [d.as_dict() for d in self.duplicate_list],
            "unmatched": [u.as_dict() for u in self.unmatched_list],
            "order_violations": [v.as_dict() for v in self.order_violation_list],
            "outside_range": [s.as_dict() for s in self.outside_range_list],
            "unattributed": [s.as_dict() for s in self.unattributed_list],
        }


# --- the matching -------------------------------------------------------------------------------------


class _Partition:
    """Per input partition in range: flags and outcome counters per offset."""

    __slots__ = ("dead_letters", "end", "flags", "outputs", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, max(start, end)
        size = self.end - self.start
        self.flags = bytearray(size)
        self.outputs = bytearray(size)
        self.dead_letters = bytearray(size)


class _Sequence:
    """The outcomes of one outcome partition for one input partition, in log order."""

    __slots__ = ("at", "inputs")

    def __init__(self) -> None:
        self.inputs = array("q")  # input offsets
        self.at = array("q")  # outcome offsets


GroupKey = tuple[str, int, str, int]  # outcome topic, outcome partition, input topic, input partition


class Reconciler:
    """Feed it inputs, retry hops and outcomes in any order of topics, each partition's records in log
    order; then ask for the `report`. `ranges` are the input partitions checked, `[start, end)`."""

    def __init__(self, ranges: Mapping[tuple[str, int], tuple[int, int]], *, listed: int = 20) -> None:
        self._partitions = {tp: _Partition(start, end) for tp, (start, end) in ranges.items()}
        self._listed = listed
        self._sequences: dict[GroupKey, _Sequence] = {}
        self._report = Report(ranges={tp: (p.start, p.end) for tp, p in self._partitions.items()})

    def _slot(self, ref: Ref) -> tuple[_Partition, int] | None:
        partition = self._partitions.get((ref.topic, ref.partition))
        if partition is None or not partition.start <= ref.offset < partition.end:
            return None
        return partition, ref.offset - partition.start

    def add_input(self, ref: Ref) -> None:
        """An input record that was read (outside the ranges: ignored)."""
        self.add_input_at(*ref)

    def add_input_at(self, topic: str, partition: int, offset: int) -> None:
        p = self._partitions.get((topic, partition))
        if p is not None and p.start <= offset < p.end:
            p.flags[offset - p.start] |= _PRESENT

    def add_retried(self, ref: Ref) -> None:
        """An input that went through the retry topic (a hop names it)."""
        self._report.retry_hops_read += 1
        if (slot := self._slot(ref)) is not None:
            partition, i = slot
            partition.flags[i] |= _RETRIED

    def add_outcome(self, outcome: Outcome) -> None:
        at = outcome.at
        self._add(outcome.kind is _OUTPUT, at.topic, at.partition, at.offset, outcome.input, outcome.retried)

    def add_output_record(self, record: Any) -> None:
        """`add_outcome(output_outcome(record))`, without the tuples: the reader's hot path."""
        headers = dict(record.headers)
        named = _named(headers, INPUT_TOPIC, INPUT_PARTITION, INPUT_OFFSET)
        self._add(True, record.topic, record.partition, record.offset, named, INPUT_VIA in headers)

    def add_dead_letter_record(self, record: Any) -> None:
        """`add_outcome(dead_letter_outcome(record))`, without the tuples."""
        named = _named(dict(record.headers), DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET)
        self._add(False, record.topic, record.partition, record.offset, named, False)

    def _add(
        self,
        output: bool,
        topic: str,
        partition: int,
        offset: int,
        named: tuple[str, int, int] | None,
        retried: bool,
    ) -> None:
        report = self._report
        if output:
            report.outputs_read += 1
        else:
            report.dead_letters_read += 1
        if named is None:
            report.unattributed += 1
            if len(report.unattributed_list) < self._listed:
                report.unattributed_list.append(Stray(Ref(topic, partition, offset), None))
            return
        in_topic, in_partition, in_offset = named
        p = self._partitions.get((in_topic, in_partition))
        if p is None or not p.start <= in_offset < p.end:
            report.outside_range += 1
            if len(report.outside_range_list) < self._listed:
                report.outside_range_list.append(Stray(Ref(topic, partition, offset), Ref(*named)))
            return
        i = in_offset - p.start
        counters = p.outputs if output else p.dead_letters
        if counters[i] < _SATURATED:
            counters[i] += 1
        if retried:
            p.flags[i] |= _RETRIED
        key = (topic, partition, in_topic, in_partition)
        sequence = self._sequences.get(key)
        if sequence is None:
            sequence = self._sequences[key] = _Sequence()
        sequence.inputs.append(in_offset)
        sequence.at.append(offset)

    def report(self) -> Report:
        """What was fed so far; another call later reports again, from the start."""
        streamed = self._report
        report = replace(
            streamed,
            unattributed_list=list(streamed.unattributed_list),
            outside_range_list=list(streamed.outside_range_list),
        )
        duplicated: list[Ref] = []
        unmatched: list[Ref] = []
        for (topic, number), p in sorted(self._partitions.items()):
            for i, (flags, outputs, dead_letters) in enumerate(
                zip(p.flags, p.outputs, p.dead_letters, strict=True)
            ):
                outcomes = outputs + dead_letters
                if flags & _PRESENT:
                    report.inputs += 1
                    report.processed += outputs > 0
                    report.dead_lettered += dead_letters > 0
                    report.retried += (flags & _RETRIED) > 0
                    if outcomes == 0:
                        report.missing += 1
                        if len(report.missing_list) < self._listed:
                            report.missing_list.append(Ref(topic, number, p.start + i))
                    elif outcomes > 1:
                        report.duplicates += 1
                        if len(duplicated) < self._listed:
                            duplicated.append(Ref(topic, number, p.start + i))
                elif outcomes:
                    report.unmatched += 1
                    if len(unmatched) < self._listed:
                        unmatched.append(Ref(topic, number, p.start + i))
        outcomes_of = self._outcomes_of({*duplicated, *unmatched})
        report.duplicate_list = [Listed(ref, outcomes_of[ref]) for ref in duplicated]
        report.unmatched_list = [Listed(ref, outcomes_of[ref]) for ref in unmatched]
        self._check_order(report)
        return report

    def _outcomes_of(self, inputs: set[Ref]) -> dict[Ref, tuple[Ref, ...]]:
        found: dict[Ref, list[Ref]] = {ref: [] for ref in inputs}
        if inputs:
            for (out_topic, out_partition, in_topic, in_partition), sequence in self._sequences.items():
                for offset, at in zip(sequence.inputs, sequence.at, strict=True):
                    outcomes = found.get(Ref(in_topic, in_partition, offset))
                    if outcomes is not None:
                        outcomes.append(Ref(out_topic, out_partition, at))
        return {ref: tuple(sorted(outcomes)) for ref, outcomes in found.items()}

    def _check_order(self, report: Report) -> None:
        """Per outcome partition and input partition: first outcomes of inputs in increasing input
        offset. Repeats (at-least-once) are skipped; so are retried inputs."""
        for key in sorted(self._sequences):
            out_topic, out_partition, in_topic, in_partition = key
            sequence = self._sequences[key]
            p = self._partitions[(in_topic, in_partition)]
            seen = bytearray(p.end - p.start)
            highest = -1
            for offset, at in zip(sequence.inputs, sequence.at, strict=True):
                i = offset - p.start
                if seen[i] or p.flags[i] & _RETRIED:
                    continue
                seen[i] = 1
                if offset > highest:
                    highest = offset
                    continue
                report.order_violations += 1
                if len(report.order_violation_list) < self._listed:
                    report.order_violation_list.append(
                        OrderViolation(
                            Ref(out_topic, out_partition, at), Ref(in_topic, in_partition, offset), highest
                        )
                    )


def ranges_of(inputs: Iterable[Ref]) -> dict[tuple[str, int], tuple[int, int]]:
    """The smallest `[start, end)` per partition that holds every input."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for topic, partition, offset in inputs:
        start, end = ranges.get((topic, partition), (offset, offset + 1))
        ranges[(topic, partition)] = (min(start, offset), max(end, offset + 1))
    return ranges


def reconcile(
    inputs: Iterable[Ref],
    outcomes: Iterable[Outcome],
    *,
    retried: Iterable[Ref] = (),
    ranges: Mapping[tuple[str, int], tuple[int, int]] | None = None,
    listed: int = 20,
) -> Report:
    """Match `outcomes` (each outcome partition's in log order) to `inputs`.

    Without `ranges`, the range of each input partition is that of the inputs given.
    """
    inputs = list(inputs)
    reconciler = Reconciler(ranges_of(inputs) if ranges is None else ranges, listed=listed)
    for ref in inputs:
        reconciler.add_input(ref)
    for ref in retried:
        reconciler.add_retried(ref)
    for outcome in outcomes:
        reconciler.add_outcome(outcome)
    return reconciler.report()


# --- reading the topics ------------------------------------------------------------------------------


class CannotRead(Exception):
    """The topics could not be read (unreachable cluster, missing topic, no progress): the message is
    the one line to show."""


class CannotConnect(CannotRead):
    """No broker could be connected to."""


@dataclass(frozen=True, slots=True)
class Topics:
    input: str
    output: str
    dead_letter: str
    retry: str | None = None  # read when it exists


@dataclass(frozen=True, slots=True)
class Selection:
    """Which inputs to check: offsets (`to_offset` included) and times (`until_ms` excluded), both
    per partition. A time stands for the offset of the partition's first record at or after it."""

    from_offset: int | None = None
    to_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None


Progress = Callable[[int, int], None]  # offsets read so far, offsets to read
FETCH_MAX_RECORDS = 20_000
CLOSE_TIMEOUT_S = 5.0


@asynccontextmanager
async def _bounded(doing: str, timeout: float) -> AsyncIterator[None]:
    """Kafka calls that must be done within `timeout` seconds, or `CannotRead` says what hung."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        raise CannotRead(f"no answer within {timeout:g}s while {doing}") from None
    except KafkaConnectionError as exc:
        raise CannotConnect(f"cannot connect while {doing}: {exc}") from None
    except KafkaError as exc:  # e.g. KafkaTimeoutError, or metadata that no broker gave
        raise CannotRead(f"failed while {doing}: {exc!r}") from None


async def _close(client: Any) -> None:
    stop = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await stop()
    except (TimeoutError, KafkaError):
        pass


async def read_and_reconcile(
    client_kwargs: Mapping[str, Any],
    topics: Topics,
    *,
    selection: Selection = Selection(),
    timeout: float = 30.0,
    listed: int = 20,
    progress: Progress | None = None,
) -> Report:
    """Read the topics (`read_committed`) up to their end offsets at start, and reconcile them.

    The input topic is read over the selected range, the other topics whole (the outcome of an
    input in range may be anywhere in them). `timeout` bounds connecting, each metadata or offsets
    request, and each stretch of fetching that makes no progress; then `CannotRead` is raised.
    """
    partitions = await _partitions(client_kwargs, topics, timeout)
    consumer = AIOKafkaConsumer(
        **client_kwargs,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    try:
        async with _bounded("connecting", timeout):
            await consumer.start()
        everything = [tp for tps in partitions.values() for tp in tps]
        consumer.assign(everything)
        async with _bounded("reading the offsets", timeout):
            firsts = await consumer.beginning_offsets(everything)
            ends = await consumer.end_offsets(everything)
            ranges = await _input_ranges(consumer, partitions[topics.input], firsts, ends, selection)
        bounds = {tp: (firsts[tp], ends[tp]) for tp in everything}
        bounds.update({TopicPartition(*tp): r for tp, r in ranges.items()})
        reconciler = Reconciler(ranges, listed=listed)
        handlers = _handlers(reconciler, topics, partitions)
        async for records in _scan(consumer, bounds, timeout, progress):
            handle = handlers[records[0].topic]
            for record in records:
                handle(record)
        report = reconciler.report()
        report.retry_topic_read = topics.retry in handlers
        return report
    finally:
        await _close(consumer)


async def _partitions(
    client_kwargs: Mapping[str, Any], topics: Topics, timeout: float
) -> dict[str, list[TopicPartition]]:
    """The partitions of each topic to read; `CannotRead` names a missing one (the retry topic may be)."""
    admin = AIOKafkaAdminClient(**client_kwargs)
    try:
        async with _bounded("connecting", timeout):
            await admin.start()
        async with _bounded("fetching metadata", timeout):
            # All topics: a metadata request naming a missing topic may create it (auto-create).
            described = {t["topic"]: t for t in await admin.describe_topics()}
    finally:
        await _close(admin)
    found: dict[str, list[TopicPartition]] = {}
    wanted = [("input", topics.input), ("output", topics.output), ("dead-letter", topics.dead_letter)]
    if topics.retry is not None:
        wanted.append(("retry", topics.retry))
    for role, name in wanted:
        topic = described.get(name)
        if topic is None or topic["error_code"] != 0 or not topic["partitions"]:
            if role == "retry":
                continue
            raise CannotRead(f"the {role} topic {name} does not exist (or may not be described)")
        if name in found:
            raise CannotRead(f"topic {name} cannot be the {role} topic too")
        found[name] = [TopicPartition(name, p["partition"]) for p in sorted(topic["partitions"], key=_number)]
    return found


def _number(partition: Mapping[str, Any]) -> int:
    number: int = partition["partition"]
    return number


def _handlers(
    reconciler: Reconciler, topics: Topics, partitions: Mapping[str, Any]
) -> dict[str, Callable[[Any], None]]:
    def on_input(record: Any) -> None:
        reconciler.add_input_at(record.topic, record.partition, record.offset)

    def on_hop(record: Any) -> None:
        if (named := retried_input(record)) is not None:
            reconciler.add_retried(named)

    handlers: dict[str, Callable[[Any], None]] = {
        topics.input: on_input,
        topics.output: reconciler.add_output_record,
        topics.dead_letter: reconciler.add_dead_letter_record,
    }
    if topics.retry is not None and topics.retry in partitions:
        handlers[topics.retry] = on_hop
    return handlers


async def _input_ranges(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    firsts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    selection: Selection,
) -> dict[tuple[str, int], tuple[int, int]]:
    """`[start, end)` per input partition: what is still on the log, narrowed by the selection."""
    starts = {tp: firsts[tp] for tp in partitions}
    stops = {tp: ends[tp] for tp in partitions}
    for when, bound, narrow in ((selection.since_ms, starts, max), (selection.until_ms, stops, min)):
        if when is None:
            continue
        found = await consumer.offsets_for_times({tp: max(0, when) for tp in partitions})
        for tp in partitions:
            at = found.get(tp)
            bound[tp] = narrow(bound[tp], ends[tp] if at is None else at.offset)
    ranges = {}
    for tp in partitions:
        start, stop = starts[tp], stops[tp]
        if selection.from_offset is not None:
            start = max(start, selection.from_offset)
        if selection.to_offset is not None:
            stop = min(stop, selection.to_offset + 1)
        ranges[(tp.topic, tp.partition)] = (start, max(start, stop))
    return ranges


async def _scan(
    consumer: AIOKafkaConsumer,
    bounds: Mapping[TopicPartition, tuple[int, int]],
    timeout: float,
    progress: Progress | None,
) -> AsyncIterator[list[Any]]:
    """The records of each partition in `[start, end)`, a partition's batch at a time, in log order.

    `CannotRead` when no partition moved for `timeout` seconds.
    """
    total = sum(end - start for start, end in bounds.values())
    remaining = {tp: end for tp, (start, end) in bounds.items() if start < end}
    reached = {tp: start for tp, (start, _) in bounds.items()}
    for tp in remaining:
        consumer.seek(tp, bounds[tp][0])
    if idle := [tp for tp in bounds if tp not in remaining]:
        consumer.pause(*idle)
    done = total - sum(end - bounds[tp][0] for tp, end in remaining.items())
    moved = time.monotonic()
    while remaining:
        if progress is not None:
            progress(done, total)
        async with _bounded("fetching records", timeout):
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=FETCH_MAX_RECORDS)
        for tp, records in batches.items():
            end = remaining.get(tp)
            if end is None or not records:
                continue
            if records[-1].offset >= end:  # appended after the start
                records = [r for r in records if r.offset < end]
            if records:
                yield records
        # Positions, not records, tell how far a partition is: transaction markers and aborted
        # records take offsets that no record is returned for.
        async with _bounded("reading positions", timeout):
            positions = {tp: await consumer.position(tp) for tp in remaining}
        for tp, at in positions.items():
            position = min(at, remaining[tp])
            if position > reached[tp]:
                done += position - reached[tp]
                reached[tp] = position
                moved = time.monotonic()
            if position >= remaining[tp]:
                del remaining[tp]
                consumer.pause(tp)
        if remaining and time.monotonic() - moved > timeout:
            stuck = ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(remaining)[:5])
            more = f" and {len(remaining) - 5} more" if len(remaining) > 5 else ""
            raise CannotRead(f"no progress reading {stuck}{more} for {timeout:g}s")
    if progress is not None:
        progress(total, total)
