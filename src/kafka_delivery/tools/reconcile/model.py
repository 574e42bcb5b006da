"""What reconciliation works on: where a record is (`TopicPartitionOffset`), and outcomes (`Outcome`,
of an `OutcomeKind`) naming their input.

An *outcome* is a record on the output topic, matched to its input by the `input.*` provenance
headers (retry.py), or a dead letter, matched by `dlq.original.*` (envelope.py). Hops to the
delayed retry topic are not outcomes; they only mark their input as *retried*. Nothing here looks
at record values.
"""

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from kafka_delivery.headers import (
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    INPUT_OFFSET,
    INPUT_PARTITION,
    INPUT_TOPIC,
    INPUT_VIA,
    RETRY_ORIGINAL_OFFSET,
    RETRY_ORIGINAL_PARTITION,
    RETRY_ORIGINAL_TOPIC,
)


class TopicPartitionOffset(NamedTuple):
    """Where a record is: topic, partition, offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class OutcomeKind(StrEnum):
    OUTPUT = "output"
    DEAD_LETTER = "dead_letter"


class Outcome(NamedTuple):
    """An outcome record at `at`, naming `input` (None: it carries no provenance)."""

    kind: OutcomeKind
    at: TopicPartitionOffset
    input: TopicPartitionOffset | None
    retried: bool = False


def named(
    headers: Mapping[str, bytes], topic: str, partition: str, offset: str
) -> tuple[str, int, int] | None:
    """The coordinates named by three headers; None when one is missing or unreadable."""
    try:
        return headers[topic].decode(), int(headers[partition]), int(headers[offset])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


def named_input(headers: Mapping[str, bytes]) -> tuple[str, int, int] | None:
    """The input an output record names (`input.*`)."""
    return named(headers, INPUT_TOPIC, INPUT_PARTITION, INPUT_OFFSET)


def named_original(headers: Mapping[str, bytes]) -> tuple[str, int, int] | None:
    """The input a dead letter names (`dlq.original.*`)."""
    return named(headers, DLQ_ORIGINAL_TOPIC, DLQ_ORIGINAL_PARTITION, DLQ_ORIGINAL_OFFSET)


def was_retried(headers: Mapping[str, bytes]) -> bool:
    """Whether an output record was processed from the retry topic (`input.via`)."""
    return INPUT_VIA in headers


def _ref(coordinates: tuple[str, int, int] | None) -> TopicPartitionOffset | None:
    return None if coordinates is None else TopicPartitionOffset(*coordinates)


def _at(record: Any) -> TopicPartitionOffset:
    return TopicPartitionOffset(record.topic, record.partition, record.offset)


def output_outcome(record: Any) -> Outcome:
    """An output record as an outcome: its `input.*` headers name the input (the last value wins)."""
    headers = dict(record.headers)
    return Outcome(OutcomeKind.OUTPUT, _at(record), _ref(named_input(headers)), retried=was_retried(headers))


def dead_letter_outcome(record: Any) -> Outcome:
    """A dead letter as an outcome: `dlq.original.*` names the input (the newest envelope wins)."""
    return Outcome(OutcomeKind.DEAD_LETTER, _at(record), _ref(named_original(dict(record.headers))))


def retried_input(record: Any) -> TopicPartitionOffset | None:
    """The input a retry-topic hop came from (`retry.original.*`)."""
    return _ref(
        named(dict(record.headers), RETRY_ORIGINAL_TOPIC, RETRY_ORIGINAL_PARTITION, RETRY_ORIGINAL_OFFSET)
    )


def ranges_of(inputs: Iterable[TopicPartitionOffset]) -> dict[tuple[str, int], tuple[int, int]]:
    """The smallest `[start, end)` per partition that holds every input."""
    ranges: dict[tuple[str, int], tuple[int, int]] = {}
    for topic, partition, offset in inputs:
        start, end = ranges.get((topic, partition), (offset, offset + 1))
        ranges[(topic, partition)] = (min(start, offset), max(end, offset + 1))
    return ranges
