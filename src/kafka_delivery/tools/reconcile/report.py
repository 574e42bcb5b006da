"""What reconciliation found (`Report`): counts of every finding, the first offenders, its JSON form."""

from dataclasses import dataclass, field
from typing import Any

from kafka_delivery.tools.reconcile.inbox import InboxReport
from kafka_delivery.tools.reconcile.model import TopicPartitionOffset


@dataclass(frozen=True, slots=True)
class Listed:
    """An offending input and the outcomes that name it."""

    input: TopicPartitionOffset
    outcomes: tuple[TopicPartitionOffset, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"input": self.input.as_dict(), "outcomes": [o.as_dict() for o in self.outcomes]}


@dataclass(frozen=True, slots=True)
class OutOfOrder:
    """`outcome` (for `input`) came after an outcome of a later input of the same partition."""

    outcome: TopicPartitionOffset
    input: TopicPartitionOffset
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

    outcome: TopicPartitionOffset
    input: TopicPartitionOffset | None

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.as_dict(), "input": self.input.as_dict() if self.input else None}


@dataclass(slots=True)
class Report:
    """What the reconciliation found. The lists hold the first few offenders; the counts all of them."""

    ranges: dict[tuple[str, int], tuple[int, int]]
    # Records read, per topic (inputs: `inputs` below).
    outputs_read: int = 0
    dead_letters_read: int = 0
    retry_hops_read: int = 0
    retry_topic_read: bool = False
    # Per input in range; the findings that break "exactly one outcome, in order", then information.
    inputs: int = 0
    processed: int = 0
    dead_lettered: int = 0
    retried: int = 0
    missing: int = 0
    duplicates: int = 0
    unmatched: int = 0
    order_violations: int = 0
    outside_range: int = 0
    unattributed: int = 0
    missing_list: list[TopicPartitionOffset] = field(default_factory=list)
    duplicate_list: list[Listed] = field(default_factory=list)
    unmatched_list: list[Listed] = field(default_factory=list)
    order_violation_list: list[OutOfOrder] = field(default_factory=list)
    outside_range_list: list[Stray] = field(default_factory=list)
    unattributed_list: list[Stray] = field(default_factory=list)
    # The effects inbox compared with the outcomes, when it was asked for (inbox.py).
    inbox: InboxReport | None = None

    def violations(self, *, allow_duplicates: bool = False) -> int:
        """Findings that break "exactly one outcome per input, in order" (and, with the inbox, "one
        inbox row per processed input, holding what was published"); strays outside are not."""
        duplicates = 0 if allow_duplicates else self.duplicates
        inbox = self.inbox.violations() if self.inbox is not None else 0
        return self.missing + duplicates + self.unmatched + self.order_violations + inbox

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
            **({"inbox": self.inbox.as_dict()} if self.inbox is not None else {}),
        }
