"""Reconciliation: does every input record have exactly one outcome, in input order?

Outcomes (outputs and dead letters) name their input by provenance headers (reconcile_model.py).
The outcomes of a retried input are exempt from the order check: the retry topic trades order for
progress. The matching here is pure (`Reconciler`, `reconcile`) and works on small tuples, so that it
is testable without Kafka; `reconcile_kafka.read_and_reconcile` streams real topics into it. What it
finds is a `Report` (reconcile_report.py).

Memory: about 3 bytes per input offset in range and 16 bytes per outcome, so that a million
records fit in a few tens of megabytes.
"""

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from kafka_delivery.tools.reconcile.model import (
    Outcome,
    OutcomeKind,
    TopicPartitionOffset,
    named_input,
    named_original,
    ranges_of,
    was_retried,
)
from kafka_delivery.tools.reconcile.report import Listed, Report, Stray
from kafka_delivery.tools.reconcile.state import (
    PRESENT,
    RETRIED,
    SATURATED,
    GroupKey,
    InputSlots,
    OutcomeSequence,
    check_order,
    outcomes_of,
)


class Reconciler:
    """Feed it inputs, retry hops and outcomes in any order of topics, each partition's records in log
    order; then ask for the `report`. `ranges` are the input partitions checked, `[start, end)`."""

    def __init__(self, ranges: Mapping[tuple[str, int], tuple[int, int]], *, listed: int = 20) -> None:
        self._partitions = {tp: InputSlots(start, end) for tp, (start, end) in ranges.items()}
        self._listed = listed
        self._sequences: dict[GroupKey, OutcomeSequence] = {}
        self._report = Report(ranges={tp: (p.start, p.end) for tp, p in self._partitions.items()})

    def add_input(self, ref: TopicPartitionOffset) -> None:
        """An input record that was read (outside the ranges: ignored)."""
        self.add_input_at(*ref)

    def add_input_at(self, topic: str, partition: int, offset: int) -> None:
        p = self._partitions.get((topic, partition))
        if p is not None and p.start <= offset < p.end:
            p.flags[offset - p.start] |= PRESENT

    def add_retried(self, ref: TopicPartitionOffset) -> None:
        """An input that went through the retry topic (a hop names it)."""
        self._report.retry_hops_read += 1
        p = self._partitions.get((ref.topic, ref.partition))
        if p is not None and p.start <= ref.offset < p.end:
            p.flags[ref.offset - p.start] |= RETRIED

    def add_outcome(self, outcome: Outcome) -> None:
        at = outcome.at
        output = outcome.kind is OutcomeKind.OUTPUT
        self._add(output, at.topic, at.partition, at.offset, outcome.input, outcome.retried)

    def add_output_record(self, record: Any) -> None:
        """`add_outcome(output_outcome(record))`, without the tuples: the reader's hot path."""
        headers = dict(record.headers)
        named = named_input(headers)
        self._add(True, record.topic, record.partition, record.offset, named, was_retried(headers))

    def add_dead_letter_record(self, record: Any) -> None:
        """`add_outcome(dead_letter_outcome(record))`, without the tuples."""
        named = named_original(dict(record.headers))
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
                report.unattributed_list.append(Stray(TopicPartitionOffset(topic, partition, offset), None))
            return
        in_topic, in_partition, in_offset = named
        p = self._partitions.get((in_topic, in_partition))
        if p is None or not p.start <= in_offset < p.end:
            report.outside_range += 1
            if len(report.outside_range_list) < self._listed:
                report.outside_range_list.append(
                    Stray(TopicPartitionOffset(topic, partition, offset), TopicPartitionOffset(*named))
                )
            return
        i = in_offset - p.start
        counters = p.outputs if output else p.dead_letters
        if counters[i] < SATURATED:
            counters[i] += 1
        if retried:
            p.flags[i] |= RETRIED
        key = (topic, partition, in_topic, in_partition)
        sequence = self._sequences.get(key)
        if sequence is None:
            sequence = self._sequences[key] = OutcomeSequence()
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
        duplicated: list[TopicPartitionOffset] = []
        unmatched: list[TopicPartitionOffset] = []
        for (topic, number), p in sorted(self._partitions.items()):
            for i, (flags, outputs, dead_letters) in enumerate(
                zip(p.flags, p.outputs, p.dead_letters, strict=True)
            ):
                outcomes = outputs + dead_letters
                if flags & PRESENT:
                    report.inputs += 1
                    report.processed += outputs > 0
                    report.dead_lettered += dead_letters > 0
                    report.retried += (flags & RETRIED) > 0
                    if outcomes == 0:
                        report.missing += 1
                        if len(report.missing_list) < self._listed:
                            report.missing_list.append(TopicPartitionOffset(topic, number, p.start + i))
                    elif outcomes > 1:
                        report.duplicates += 1
                        if len(duplicated) < self._listed:
                            duplicated.append(TopicPartitionOffset(topic, number, p.start + i))
                elif outcomes:
                    report.unmatched += 1
                    if len(unmatched) < self._listed:
                        unmatched.append(TopicPartitionOffset(topic, number, p.start + i))
        found = outcomes_of(self._sequences, {*duplicated, *unmatched})
        report.duplicate_list = [Listed(ref, found[ref]) for ref in duplicated]
        report.unmatched_list = [Listed(ref, found[ref]) for ref in unmatched]
        check_order(self._sequences, self._partitions, report, self._listed)
        return report


def reconcile(
    inputs: Iterable[TopicPartitionOffset],
    outcomes: Iterable[Outcome],
    *,
    retried: Iterable[TopicPartitionOffset] = (),
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
