"""What `order-service verify` prints: one JSON object (`--json`), or a summary for people."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka_delivery.tools import Report, Topics

CLEAN, VIOLATIONS, CANNOT_CHECK = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Scope:
    """What was asked to be checked, as the options gave it."""

    from_offset: int | None = None
    to_offset: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    allow_duplicates: bool = False
    effects: bool = False


def as_json(topics: Topics, args: Scope, report: Report, code: int, elapsed: float) -> dict[str, Any]:
    """The one JSON object of `--json`: the result, what was checked, and the report."""
    return {
        "result": "clean" if code == CLEAN else "violations",
        "exit_code": code,
        "topics": {
            "input": topics.input,
            "output": topics.output,
            "dead_letter": topics.dead_letter,
            "retry": topics.retry if report.retry_topic_read else None,
        },
        "selection": {
            "from_offset": args.from_offset,
            "to_offset": args.to_offset,
            "since": args.since.isoformat() if args.since else None,
            "until": args.until.isoformat() if args.until else None,
            "allow_duplicates": args.allow_duplicates,
            "effects": args.effects,
        },
        **report.as_dict(),
        "elapsed_s": round(elapsed, 3),
    }


def summary(topics: Topics, args: Scope, report: Report, violations: int, elapsed: float) -> str:
    """The summary for people: counts, then the first offenders of each kind."""
    offsets = sum(end - start for start, end in report.ranges.values())
    scope = []
    if args.from_offset is not None or args.to_offset is not None:
        scope.append(f"offsets {args.from_offset or 0}..{'' if args.to_offset is None else args.to_offset}")
    if args.since is not None or args.until is not None:
        since = args.since.isoformat() if args.since else ""
        until = args.until.isoformat() if args.until else ""
        scope.append(f"times {since}..{until}")
    retry = f", retry topic {topics.retry}" if report.retry_topic_read else ""
    lines = [
        f"verified {topics.input} -> {topics.output} | {topics.dead_letter}{retry}",
        f"  {len(report.ranges)} input partitions, {offsets} offsets in range"
        + (f" ({'; '.join(scope)})" if scope else " (all)"),
        "",
    ]
    duplicates_note = "allowed (--allow-duplicates)" if args.allow_duplicates else ""
    rows = [
        ("inputs", report.inputs, ""),
        ("processed", report.processed, "with an output"),
        ("dead-lettered", report.dead_lettered, "with a dead letter"),
        ("retried", report.retried, "went through the retry topic: exempt from the order check"),
        ("missing", report.missing, "no outcome"),
        ("duplicates", report.duplicates, duplicates_note or "more than one outcome"),
        ("unmatched", report.unmatched, "outcomes naming an input offset in range that was not read"),
        ("order violations", report.order_violations, "outcomes behind a later input's"),
        ("outside the range", report.outside_range, "information: outcomes of inputs not checked"),
        ("no provenance", report.unattributed, "information: outcomes naming no input"),
    ]
    lines += [f"  {name:<18}{count:>10}   {note}".rstrip() for name, count, note in rows]

    def section(title: str, count: int, entries: Sequence[str]) -> None:
        if count:
            shown = f" (first {len(entries)} of {count})" if len(entries) < count else ""
            lines.extend(["", f"{title}{shown}:", *(f"  {e}" for e in entries)])

    section("missing outcomes", report.missing, [f"input {ref}" for ref in report.missing_list])
    section(
        "duplicate outcomes",
        report.duplicates,
        [f"input {d.input}: {', '.join(map(str, d.outcomes))}" for d in report.duplicate_list],
    )
    section(
        "unmatched outcomes",
        report.unmatched,
        [
            f"{', '.join(map(str, u.outcomes))} name input {u.input}, not on the log"
            for u in report.unmatched_list
        ],
    )
    section(
        "order violations",
        report.order_violations,
        [
            f"{v.outcome} (input {v.input}) comes after the outcome of input offset {v.after_offset}"
            for v in report.order_violation_list
        ],
    )
    section(
        "outside the range (information)",
        report.outside_range,
        [f"{s.outcome} names input {s.input}" for s in report.outside_range_list],
    )
    section(
        "no provenance (information)", report.unattributed, [str(s.outcome) for s in report.unattributed_list]
    )
    if (inbox := report.inbox) is not None:
        lines += [
            "",
            "effects inbox",
            *(
                f"  {name:<18}{count:>10}   {note}".rstrip()
                for name, count, note in (
                    ("rows", inbox.rows, "inbox rows of inputs in range"),
                    ("checked", inbox.checked, "outputs compared with their row"),
                    ("missing rows", inbox.missing_rows, "published, but no inbox row"),
                    ("differing", inbox.differing, "published outcome differs from the stored one"),
                    ("dead-lettered", inbox.dead_lettered_rows, "an inbox row for a dead-lettered input"),
                    ("unpublished", inbox.unpublished_rows, "an inbox row, nothing published"),
                )
            ),
        ]
        section("inputs without an inbox row", inbox.missing_rows, [str(r) for r in inbox.missing_row_list])
        section("outcomes differing from the inbox", inbox.differing, [str(r) for r in inbox.differing_list])
        section(
            "inbox rows of dead-lettered inputs",
            inbox.dead_lettered_rows,
            [str(r) for r in inbox.dead_lettered_row_list],
        )
        section(
            "inbox rows with nothing published",
            inbox.unpublished_rows,
            [str(r) for r in inbox.unpublished_row_list],
        )
    read = report.inputs + report.outputs_read + report.dead_letters_read + report.retry_hops_read
    lines += ["", f"read {read} records in {elapsed:.1f}s"]
    if violations:
        broken = "exactly-one-outcome-in-order" + (" or one-inbox-row-per-input" if report.inbox else "")
        lines.append(f"VIOLATIONS: {violations} finding(s) break {broken}")
        if report.missing:
            lines.append(
                "  (a running service may not have handled the newest inputs yet: --until leaves them out)"
            )
    elif report.inbox is not None:
        lines.append(
            "OK: every input in range has exactly one outcome, in input order, and every processed "
            "input one inbox row holding it"
        )
    else:
        lines.append("OK: every input in range has exactly one outcome, in input order")
    return "\n".join(lines)
