"""Reading real topics into a `Reconciler`: `read_and_reconcile`.

The input topic is read over the selected range, the output, dead-letter and (when it exists) retry
topics whole, each up to its end offset at start, with kafka_io's reading consumer (`read_committed`).
Every Kafka call is bounded (tools/bounded_calls.py): an unreachable cluster raises `KafkaUnreachable`, a
missing topic `MissingTopicsError`.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_delivery.errors import MissingTopicsError
from kafka_delivery.tools.bounded_calls import bounded, close, deadline
from kafka_delivery.tools.reading import partitions_of, reading_consumer
from kafka_delivery.tools.reconcile.inbox import InboxCheck
from kafka_delivery.tools.reconcile.model import retried_input
from kafka_delivery.tools.reconcile.reconciler import Reconciler
from kafka_delivery.tools.reconcile.report import Report
from kafka_delivery.tools.reconcile.scan import Progress, scan


@dataclass(frozen=True, slots=True)
class Topics:
    input: str
    output: str
    dead_letter: str
    retry: str | None = None  # read when it exists

    def __post_init__(self) -> None:
        roles = [("input", self.input), ("output", self.output), ("dead-letter", self.dead_letter)]
        roles += [("retry", self.retry)] if self.retry is not None else []
        for i, (role, name) in enumerate(roles):
            if name in [other for _, other in roles[:i]]:
                raise ValueError(f"topic {name} cannot be the {role} topic too")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which inputs to check: offsets (`to_offset` included) and times (`until_ms` excluded), both
    per partition. A time stands for the offset of the partition's first record at or after it."""

    from_offset: int | None = None
    to_offset: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None


async def read_and_reconcile(
    client_kwargs: Mapping[str, Any],
    topics: Topics,
    *,
    selection: Selection = Selection(),
    timeout: float = 30.0,
    listed: int = 20,
    progress: Progress | None = None,
    inbox: InboxCheck | None = None,
) -> Report:
    """Read the topics (`read_committed`) up to their end offsets at start, and reconcile them.

    The input topic is read over the selected range, the other topics whole (the outcome of an
    input in range may be anywhere in them). `timeout` bounds connecting, each metadata or offsets
    request, and each stretch of fetching that makes no progress; then `KafkaUnreachable` is raised.
    With `inbox`, the outputs and dead letters are fed to it too (`report.inbox`).
    """
    consumer = reading_consumer(**client_kwargs)
    try:
        async with bounded("connecting", deadline(timeout)):
            await consumer.start()
        partitions = await _partitions(consumer, topics, timeout)
        everything = [tp for tps in partitions.values() for tp in tps]
        consumer.assign(everything)
        async with bounded("reading the offsets", deadline(timeout)):
            firsts = await consumer.beginning_offsets(everything)
            ends = await consumer.end_offsets(everything)
            ranges = await _input_ranges(consumer, partitions[topics.input], firsts, ends, selection)
        bounds = {tp: (firsts[tp], ends[tp]) for tp in everything}
        bounds.update({TopicPartition(*tp): r for tp, r in ranges.items()})
        reconciler = Reconciler(ranges, listed=listed)
        handlers = _handlers(reconciler, topics, partitions, inbox)
        await scan(consumer, bounds, handlers, timeout, progress)
        report = reconciler.report()
        report.retry_topic_read = topics.retry in handlers
        if inbox is not None:
            report.inbox = inbox.report(ranges)
        return report
    finally:
        await close(consumer)


async def _partitions(
    consumer: AIOKafkaConsumer, topics: Topics, timeout: float
) -> dict[str, list[TopicPartition]]:
    """The partitions of each topic to read; `MissingTopicsError` names a missing one (the retry
    topic may be).

    Asked before anything is assigned: the consumer then requests the metadata of all topics, never
    of one by name, which would create a missing topic on a cluster that auto-creates topics.
    """
    wanted = [("input", topics.input), ("output", topics.output), ("dead-letter", topics.dead_letter)]
    if topics.retry is not None:
        wanted.append(("retry", topics.retry))
    found: dict[str, list[TopicPartition]] = {}
    for role, name in wanted:
        try:
            async with bounded("fetching metadata", deadline(timeout)):
                found[name] = await partitions_of(consumer, name)
        except MissingTopicsError:
            if role == "retry":
                continue
            raise MissingTopicsError(
                f"the {role} topic {name} does not exist (or may not be described)"
            ) from None
    return found


def _handlers(
    reconciler: Reconciler, topics: Topics, partitions: Mapping[str, Any], inbox: InboxCheck | None
) -> dict[str, Callable[[Any], None]]:
    def on_input(record: Any) -> None:
        reconciler.add_input_at(record.topic, record.partition, record.offset)

    def on_hop(record: Any) -> None:
        if (named := retried_input(record)) is not None:
            reconciler.add_retried(named)

    on_output, on_dead_letter = reconciler.add_output_record, reconciler.add_dead_letter_record
    if inbox is not None:

        def on_output(record: Any) -> None:
            reconciler.add_output_record(record)
            inbox.add_output_record(record)

        def on_dead_letter(record: Any) -> None:
            reconciler.add_dead_letter_record(record)
            inbox.add_dead_letter_record(record)

    handlers: dict[str, Callable[[Any], None]] = {
        topics.input: on_input,
        topics.output: on_output,
        topics.dead_letter: on_dead_letter,
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
