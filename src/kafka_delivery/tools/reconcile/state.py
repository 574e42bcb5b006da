"""What the reconciler keeps while records stream in, and the checks that need all of it.

Per input partition in range, a flag byte and two outcome counters per offset (`InputSlots`); per outcome
partition and input partition, the input offsets its outcomes name, in log order (`OutcomeSequence`).
Memory: about 3 bytes per input offset in range and 16 bytes per outcome.
"""

from array import array
from collections.abc import Mapping

from kafka_delivery.tools.reconcile.model import TopicPartitionOffset
from kafka_delivery.tools.reconcile.report import OutOfOrder, Report

PRESENT = 1  # the input record was read
RETRIED = 2  # it went through the retry topic
SATURATED = 255  # outcome counters stop here

GroupKey = tuple[str, int, str, int]  # outcome topic, outcome partition, input topic, input partition


class InputSlots:
    """Per input partition in range, `[start, end)`: flags and outcome counters per offset."""

    __slots__ = ("dead_letters", "end", "flags", "outputs", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, max(start, end)
        size = self.end - self.start
        self.flags = bytearray(size)
        self.outputs = bytearray(size)
        self.dead_letters = bytearray(size)


class OutcomeSequence:
    """The outcomes of one outcome partition for one input partition, in log order."""

    __slots__ = ("at", "inputs")

    def __init__(self) -> None:
        self.inputs = array("q")  # input offsets
        self.at = array("q")  # outcome offsets


def outcomes_of(
    sequences: Mapping[GroupKey, OutcomeSequence], inputs: set[TopicPartitionOffset]
) -> dict[TopicPartitionOffset, tuple[TopicPartitionOffset, ...]]:
    """The outcomes that name each of `inputs`, sorted."""
    found: dict[TopicPartitionOffset, list[TopicPartitionOffset]] = {ref: [] for ref in inputs}
    if inputs:
        for (out_topic, out_partition, in_topic, in_partition), sequence in sequences.items():
            for offset, at in zip(sequence.inputs, sequence.at, strict=True):
                outcomes = found.get(TopicPartitionOffset(in_topic, in_partition, offset))
                if outcomes is not None:
                    outcomes.append(TopicPartitionOffset(out_topic, out_partition, at))
    return {ref: tuple(sorted(outcomes)) for ref, outcomes in found.items()}


def check_order(
    sequences: Mapping[GroupKey, OutcomeSequence],
    partitions: Mapping[tuple[str, int], InputSlots],
    report: Report,
    listed: int,
) -> None:
    """Per outcome partition and input partition: first outcomes of inputs in increasing input
    offset. Repeats (at-least-once) are skipped; so are retried inputs."""
    for key in sorted(sequences):
        out_topic, out_partition, in_topic, in_partition = key
        sequence = sequences[key]
        p = partitions[(in_topic, in_partition)]
        seen = bytearray(p.end - p.start)
        highest = -1
        for offset, at in zip(sequence.inputs, sequence.at, strict=True):
            i = offset - p.start
            if seen[i] or p.flags[i] & RETRIED:
                continue
            seen[i] = 1
            if offset > highest:
                highest = offset
                continue
            report.order_violations += 1
            if len(report.order_violation_list) < listed:
                report.order_violation_list.append(
                    OutOfOrder(
                        TopicPartitionOffset(out_topic, out_partition, at),
                        TopicPartitionOffset(in_topic, in_partition, offset),
                        highest,
                    )
                )
