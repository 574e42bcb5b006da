"""How a delivery engine runs: ordering, concurrency, buffering, backoff and commit interval."""

from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from kafka_delivery.engine.lanes import Ordering

Positive = Annotated[int, Field(gt=0)]


# Validated when made (pydantic): the library's users build it themselves, and a zero interval or
# worker count would spin or stall the engine rather than fail.
@dataclass(frozen=True, slots=True)
class EngineSettings:
    ordering: Ordering = "key"
    """`key`: one record of a key at a time, in offset order; `partition`: one per partition."""
    max_in_flight: Positive = 1_000
    """Records being processed at once (the workers); records waiting for their key do not count."""
    max_buffered: Positive = 2_000
    """A partition holding this many records between fetch and commit stops fetching until it drains."""
    drain_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """How long a revocation waits for the revoked partitions' records to be committed."""
    backoff_ms: Positive = 500
    """First backoff of a partition after a failed publish or commit; doubles up to `max_backoff_ms`."""
    max_backoff_ms: Positive = 30_000
    commit_interval_ms: Positive = 100
    """How often the committer runs when nothing wakes it (exactly-once commits at this interval)."""
    eager: bool = False
    """Run records inside `process` with the handler's `now` (an ImmediateHandler; see engine.py)."""
