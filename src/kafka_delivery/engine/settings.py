"""How a delivery engine runs: ordering, concurrency, buffering, backoff and commit interval."""

from dataclasses import dataclass

from kafka_delivery.engine.lanes import Ordering


@dataclass(frozen=True, slots=True)
class EngineSettings:
    ordering: Ordering = "key"
    # Records being processed at once (the workers); records waiting for their key do not count.
    max_in_flight: int = 1_000
    # A partition holding this many records between fetch and commit stops fetching until it drains.
    max_buffered: int = 2_000
    # How long a revocation waits for the revoked partitions' records to be committed.
    drain_timeout_s: float = 10.0
    # First backoff of a partition after a failed publish or commit; doubles up to the ceiling.
    backoff_ms: int = 500
    max_backoff_ms: int = 30_000
    # How often the committer runs when nothing wakes it (exactly-once commits at this interval).
    commit_interval_ms: int = 100
    # Run records inside `process` with the handler's `now` (an ImmediateHandler; see engine.py).
    eager: bool = False
