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
    restarts_needed: int = 0
    restart_reasons: list[str] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)
    drained: bool = False
    events: list[tuple[float, str]] = field(default_factory=list)
    error: str | None = None
    elapsed_s: float = 0.0

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
        if self.restarts_needed:
            found.append(f"{self.restarts_needed} manual restart(s): {'; '.join(self.restart_reasons)}")
        if not self.drained:
            found.append("the group did not commit the whole input")
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
            f"{self.elapsed_s:.0f}s -> {verdict}"
        )


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}s"
