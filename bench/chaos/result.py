"""What a chaos run measures: the progress samples the monitor takes, and the result of one row of
docs/reliability.md with its pass criteria. Plain data, so that the report and the CI test read a
result without the harness that made it."""

from dataclasses import dataclass, field

from bench.chaos.kafka.progress import Offsets


@dataclass
class Sample:
    at: float  # seconds since the run's start
    offsets: Offsets | None
    produced: int = 0  # orders acknowledged to the producer so far


@dataclass
class Effects:
    """The database effects of a run with the stock processor, counted with SQL after the run
    (bench/chaos/effects.py). Inputs are told apart by their coordinates (partition, offset): an
    order the producer sent twice is two inputs, each with its own effects."""

    valid_inputs: int = 0  # input records that are orders (not the malformed 1 %)
    ledger_rows: int = 0
    ledger_duplicates: int = 0  # ledger rows beyond the first of an input
    ledger_missing: int = 0  # valid inputs without a ledger row
    ledger_foreign: int = 0  # ledger rows of no valid input, or of another order id than the input's
    inbox_rows: int = 0  # of the run's group and input topic
    inbox_missing: int = 0  # valid inputs without an inbox row
    inbox_foreign: int = 0  # inbox rows of no valid input
    outcomes_checked: int = 0  # output records compared with the ledger and the inbox
    outcome_mismatches: int = 0  # status not the ledger's, bytes not the inbox's, or no ledger row
    accepted: int = 0  # ledger rows "processed": stock reserved
    rejected: int = 0
    skus: int = 0  # rows of `stock`
    stock_initial: int = 0  # units in all
    stock_reserved: int = 0  # units the accepted inputs wanted
    stock_final: int = 0
    stock_mismatched_skus: int = 0  # SKUs whose final stock is not initial - reserved
    negative_skus: int = 0
    # The batch attempts the service logged as failed for the database, by error (both instances'
    # logs): what the database's outage, or contention, cost. Not a pass criterion.
    retried: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # the check could not run

    @property
    def stock_ok(self) -> bool:
        return (
            self.error is None
            and not self.stock_mismatched_skus
            and not self.negative_skus
            and self.stock_initial - self.stock_reserved == self.stock_final
        )

    def failures(self) -> list[str]:
        if self.error:
            return [f"effects not checked: {self.error}"]
        found = []
        for count, what in (
            (self.ledger_duplicates, "ledger rows repeat an input"),
            (self.ledger_missing, "valid inputs without a ledger row"),
            (self.ledger_foreign, "ledger rows of no valid input"),
            (self.inbox_missing, "valid inputs without an inbox row"),
            (self.inbox_foreign, "inbox rows of no valid input"),
            (self.outcome_mismatches, "published outcomes differ from the ledger's or the inbox's"),
        ):
            if count:
                found.append(f"{count} {what}")
        if not self.stock_ok:
            found.append(
                f"stock: initial {self.stock_initial} - reserved {self.stock_reserved} != final "
                f"{self.stock_final} ({self.stock_mismatched_skus} SKUs off, {self.negative_skus} negative)"
            )
        if not self.accepted:
            found.append("no order reserved stock: the stock check proves nothing")
        return found

    def summary(self) -> str:
        if self.error:
            return f"effects not checked ({self.error})"
        return (
            f"ledger {self.ledger_rows} rows for {self.valid_inputs} valid inputs ({self.ledger_duplicates} "
            f"repeated, {self.ledger_missing} missing), inbox {self.inbox_rows}, stock "
            f"{'ok' if self.stock_ok else 'WRONG'}, outcomes differing {self.outcome_mismatches}"
        )


@dataclass
class Result:
    scenario: int
    title: str
    guarantee: str
    orders: int
    evidence: str
    produced: int = 0
    resent: int = 0
    producer_errors: dict[str, int] = field(default_factory=dict)
    inputs: int | None = None
    processed: int | None = None
    dead_lettered: int | None = None
    outcome_records: int | None = None
    lost: int | None = None
    duplicates: int | None = None
    order_violations: int | None = None
    unmatched: int | None = None
    checked_by: str = ""
    verify_result: str | None = None
    longest_stall_s: float | None = None
    recovery_s: float | None = None
    recovery_after_last_s: float | None = None  # from the last fault action (several-step scenarios)
    fault_at_s: float | None = None  # when the first fault action came, since the run's start
    restarts_needed: int = 0
    restart_reasons: list[str] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)
    drained: bool = False
    events: list[tuple[float, str]] = field(default_factory=list)
    error: str | None = None
    elapsed_s: float = 0.0
    effects_expected: bool = False  # a run with the stock processor and its database
    effects: Effects | None = None
    # Service log lines at WARNING or worse per instance, from the first fault action on (the
    # malformed 1 %'s dead-lettering aside), and the most frequent messages of each instance.
    warning_lines: dict[str, int] = field(default_factory=dict)
    warning_messages: dict[str, dict[str, int]] = field(default_factory=dict)
    warning_limit: int | None = None  # at most this many per instance (the network scenarios)

    @property
    def exactly_once(self) -> bool:
        return self.guarantee == "exactly_once"

    def failures(self) -> list[str]:
        """Why this row fails the pass criteria; empty when it passes."""
        found = []
        if self.error:
            found.append(f"harness: {self.error}")
        if self.lost is None:
            found.append("not verified")
        else:
            if self.lost:
                found.append(f"{self.lost} lost")
            if self.exactly_once and self.duplicates:
                found.append(f"{self.duplicates} duplicates in exactly-once")
            if self.order_violations:
                found.append(f"{self.order_violations} order violations")
            if self.unmatched:
                found.append(f"{self.unmatched} unmatched outcomes")
        if self.fault_at_s is None:
            found.append("the fault never came")
        if self.restarts_needed:
            found.append(f"{self.restarts_needed} manual restart(s): {'; '.join(self.restart_reasons)}")
        if not self.drained:
            found.append("the group did not commit the whole input")
        if self.effects_expected and self.effects is None:
            found.append("effects not checked")
        if self.effects is not None:
            found += self.effects.failures()
        if self.warning_limit is not None:
            found += [
                f"instance {name} logged {count} WARNING-or-worse lines after the fault (at most "
                f"{self.warning_limit})"
                for name, count in sorted(self.warning_lines.items())
                if count > self.warning_limit
            ]
        return found

    @property
    def passed(self) -> bool:
        return not self.failures()

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.failures())
        return (
            f"scenario {self.scenario} ({self.title}), {self.guarantee}: inputs {self.inputs}, "
            f"outcomes {self.outcome_records}, lost {self.lost}, duplicates {self.duplicates}, "
            f"order violations {self.order_violations}, longest stall {_s(self.longest_stall_s)}, "
            f"recovery {_s(self.recovery_s)}, restarts needed {self.restarts_needed}, "
            + (f"{self.effects.summary()}, " if self.effects is not None else "")
            + f"{self.elapsed_s:.0f}s -> {verdict}"
        )


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}s"
