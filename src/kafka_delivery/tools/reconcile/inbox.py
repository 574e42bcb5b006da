"""Reconciling the effects inbox with the topics: every processed input has exactly one inbox row,
and what was published for it is the outcome stored there (kafka_delivery/effects).

Fed the output and dead-letter records as the reader streams them (`read_and_reconcile`, `inbox=`);
values are compared on the fly and not kept. Inputs processed from the retry topic are left out:
their inbox rows are keyed by the retry topic's coordinates under the retry group.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka_delivery.tools.reconcile.model import (
    TopicPartitionOffset,
    named_input,
    named_original,
    was_retried,
)

Rows = Mapping[tuple[str, int, int], bytes]


@dataclass(slots=True)
class InboxReport:
    """What the inbox check found, for inputs in range. Lists hold the first few; counts all."""

    rows: int = 0  # inbox rows of inputs in range
    checked: int = 0  # outputs compared with a row
    missing_rows: int = 0  # an output was published, the input has no inbox row
    differing: int = 0  # the published outcome is not the stored one
    dead_lettered_rows: int = 0  # the input was dead-lettered, yet it has an inbox row
    unpublished_rows: int = 0  # an inbox row, and nothing published for the input
    missing_row_list: list[TopicPartitionOffset] = field(default_factory=list)
    differing_list: list[TopicPartitionOffset] = field(default_factory=list)
    dead_lettered_row_list: list[TopicPartitionOffset] = field(default_factory=list)
    unpublished_row_list: list[TopicPartitionOffset] = field(default_factory=list)

    def violations(self) -> int:
        return self.missing_rows + self.differing + self.dead_lettered_rows + self.unpublished_rows

    def as_dict(self) -> dict[str, Any]:
        def listed(refs: list[TopicPartitionOffset]) -> list[dict[str, Any]]:
            return [ref.as_dict() for ref in refs]

        return {
            "counts": {
                "rows": self.rows,
                "checked": self.checked,
                "missing_rows": self.missing_rows,
                "differing": self.differing,
                "dead_lettered_rows": self.dead_lettered_rows,
                "unpublished_rows": self.unpublished_rows,
            },
            "missing_rows": listed(self.missing_row_list),
            "differing": listed(self.differing_list),
            "dead_lettered_rows": listed(self.dead_lettered_row_list),
            "unpublished_rows": listed(self.unpublished_row_list),
        }


class InboxCheck:
    """Compares outputs and dead letters with `rows`, the inbox rows of the input topic's group keyed
    by (topic, partition, offset); `report(ranges)` limits the findings to the inputs in range."""

    def __init__(self, rows: Rows, *, listed: int = 20) -> None:
        self._rows = rows
        self._listed = listed
        self._published: set[tuple[str, int, int]] = set()
        self._dead_lettered: set[tuple[str, int, int]] = set()
        self._missing: list[tuple[str, int, int]] = []
        self._differing: list[tuple[str, int, int]] = []
        self._checked: list[tuple[str, int, int]] = []

    def add_output_record(self, record: Any) -> None:
        headers = dict(record.headers)
        named = named_input(headers)
        if named is None or was_retried(headers):
            return
        self._published.add(named)
        stored = self._rows.get(named)
        if stored is None:
            self._missing.append(named)
        else:
            self._checked.append(named)
            if stored != record.value:
                self._differing.append(named)

    def add_dead_letter_record(self, record: Any) -> None:
        named = named_original(dict(record.headers))
        if named is not None:
            self._dead_lettered.add(named)

    def report(self, ranges: Mapping[tuple[str, int], tuple[int, int]]) -> InboxReport:
        def in_range(ref: tuple[str, int, int]) -> bool:
            bounds = ranges.get((ref[0], ref[1]))
            return bounds is not None and bounds[0] <= ref[2] < bounds[1]

        report = InboxReport()
        rows = sorted(ref for ref in self._rows if in_range(ref))
        report.rows = len(rows)
        report.checked = sum(1 for ref in self._checked if in_range(ref))

        def found(refs: list[tuple[str, int, int]]) -> tuple[int, list[TopicPartitionOffset]]:
            kept = sorted({ref for ref in refs if in_range(ref)})
            return len(kept), [TopicPartitionOffset(*ref) for ref in kept[: self._listed]]

        report.missing_rows, report.missing_row_list = found(self._missing)
        report.differing, report.differing_list = found(self._differing)
        report.dead_lettered_rows, report.dead_lettered_row_list = found(
            [ref for ref in rows if ref in self._dead_lettered]
        )
        report.unpublished_rows, report.unpublished_row_list = found(
            [ref for ref in rows if ref not in self._published and ref not in self._dead_lettered]
        )
        return report
