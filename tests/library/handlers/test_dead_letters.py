"""Dead-letter routing: what reaches the DLQ (or the retry topic), with which envelope and metrics.

Every test runs through both ways in: the guard's coroutine (workers), and its `now` (an eager
engine), where a blocking retry raises `Waits` and the rest is awaited.
"""

import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from kafka_delivery import headers
from kafka_delivery.errors import DeserializationError, ErrorCategory, classify
from kafka_delivery.handlers import dead_letters as dead_letter_module
from kafka_delivery.handlers.dead_letters import DeadLetterGuard
from kafka_delivery.handlers.envelope import original_headers, read_envelope
from kafka_delivery.handlers.retry import RetryPolicy, RetryTopic, TransientError, header
from kafka_delivery.operations.metrics import PipelineMetrics
from kafka_delivery.types import OutgoingRecord, Waits
from tests.support.fakes import TIMESTAMP, record, sample

DLQ = "in.dlq"
NO_RETRY = RetryPolicy(attempts=1)
RETRY = "in.retry"
GROUP = "g"
HOW = "awaited"  # set per test by the `entry` fixture


class Amount(BaseModel):
    total: int


class Failing:
    """A record handler that raises the given errors in turn, then echoes the record."""

    def __init__(self, *errors: BaseException) -> None:
        self._errors = list(errors)
        self.calls = 0

    async def __call__(self, rec: Any) -> Sequence[OutgoingRecord]:
        return self.now(rec)

    def now(self, rec: Any) -> Sequence[OutgoingRecord]:
        self.calls += 1
        if self._errors:
            raise self._errors.pop(0)
        return [OutgoingRecord(topic="out", key=rec.key, value=rec.value)]


class Entry:
    """The guard, called the way the test's parameter says: awaited, or `now` (and on `Waits`, its rest)."""

    def __init__(self, guard: DeadLetterGuard, how: str) -> None:
        self.guard, self.how = guard, how
        self.waited = 0

    async def __call__(self, rec: Any) -> Sequence[OutgoingRecord]:
        if self.how == "awaited":
            return await self.guard(rec)
        try:
            return self.guard.now(rec)
        except Waits as waits:
            self.waited += 1
            return await waits.rest


@pytest.fixture(autouse=True, params=["awaited", "now"])
def entry(request: pytest.FixtureRequest) -> str:
    global HOW
    HOW = str(request.param)
    return HOW


class Sleeps:
    """Replaces asyncio.sleep in the middleware's module: records the backoffs, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    fake = Sleeps()
    monkeypatch.setattr(dead_letter_module, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def middleware(
    handler: Failing,
    registry: CollectorRegistry,
    *,
    retry: RetryPolicy = NO_RETRY,
    retry_topic: RetryTopic | None = None,
    secrets: Sequence[str] = (),
    max_message_chars: int = 512,
) -> Entry:
    guard = DeadLetterGuard(
        handler,
        topic=DLQ,
        group_id=GROUP,
        metrics=PipelineMetrics(registry, "t"),
        retry=retry,
        retry_topic=retry_topic,
        secrets=secrets,
        max_message_chars=max_message_chars,
    )
    return Entry(guard, HOW)


def dead_lettered(registry: CollectorRegistry, category: str) -> float | None:
    return sample(registry, "t_records_dead_lettered_total", category=category)


INPUT_HEADERS = [("trace", b"abc"), ("binary", b"\x00\xff")]


def input_record(**overrides: Any) -> Any:
    fields: dict[str, Any] = {"key": b"k-1", "value": b"\xff raw", "headers": INPUT_HEADERS}
    return record("in", 3, 42, **(fields | overrides))


async def test_a_record_that_succeeds_is_passed_through_untouched(registry: CollectorRegistry) -> None:
    [out] = await middleware(Failing(), registry)(input_record())
    assert (out.topic, out.key, out.value) == ("out", b"k-1", b"\xff raw")
    assert dead_lettered(registry, "processing") == 0


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (DeserializationError("empty or null value"), "deserialization"),
        (ValueError("negative total"), "processing"),
    ],
)
async def test_a_permanent_error_goes_to_the_dlq_at_once_with_the_original_record(
    registry: CollectorRegistry, sleeps: Sleeps, error: Exception, category: str
) -> None:
    handler = Failing(error)
    [letter] = await middleware(handler, registry, retry=RetryPolicy(attempts=5))(input_record())

    assert handler.calls == 1
    assert sleeps.delays == []
    assert (letter.topic, letter.key, letter.value) == (DLQ, b"k-1", b"\xff raw")
    assert original_headers(letter.headers) == INPUT_HEADERS
    envelope = read_envelope(letter.headers)
    assert {k: v for k, v in envelope.items() if k != headers.DLQ_FAILED_AT} == {
        headers.DLQ_ENVELOPE_VERSION: "1",
        headers.DLQ_ORIGINAL_TOPIC: "in",
        headers.DLQ_ORIGINAL_PARTITION: "3",
        headers.DLQ_ORIGINAL_OFFSET: "42",
        headers.DLQ_ORIGINAL_TIMESTAMP: str(TIMESTAMP),
        headers.DLQ_CONSUMER_GROUP: GROUP,
        headers.DLQ_ERROR_CATEGORY: category,
        headers.DLQ_ERROR_TYPE: type(error).__name__,
        headers.DLQ_ERROR_MESSAGE: str(error),
        headers.DLQ_ATTEMPTS: "1",
    }
    assert dead_lettered(registry, category) == 1


def validation_error(value: bytes) -> Exception:
    try:
        Amount.model_validate_json(value)
    except Exception as exc:
        return exc
    raise AssertionError("expected a validation error")


async def test_pydantic_errors_are_validation_unless_the_bytes_are_not_json(
    registry: CollectorRegistry,
) -> None:
    handler = Failing(validation_error(b'{"total": "many"}'), validation_error(b"{not json"))
    dlq = middleware(handler, registry)

    [invalid] = await dlq(input_record())
    [unreadable] = await dlq(input_record())

    assert read_envelope(invalid.headers)[headers.DLQ_ERROR_CATEGORY] == "validation"
    # The message names the field, never the offending input value.
    assert read_envelope(invalid.headers)[headers.DLQ_ERROR_MESSAGE].startswith("total: ")
    assert "many" not in read_envelope(invalid.headers)[headers.DLQ_ERROR_MESSAGE]
    assert read_envelope(unreadable.headers)[headers.DLQ_ERROR_CATEGORY] == "deserialization"
    assert (dead_lettered(registry, "validation"), dead_lettered(registry, "deserialization")) == (1, 1)


def test_classify_maps_error_types_to_categories() -> None:
    assert classify(DeserializationError("x")) is ErrorCategory.DESERIALIZATION
    assert classify(validation_error(b'{"total": "many"}')) is ErrorCategory.VALIDATION
    assert classify(validation_error(b"[")) is ErrorCategory.DESERIALIZATION
    assert classify(KeyError("x")) is ErrorCategory.PROCESSING


async def test_the_error_message_is_redacted_and_truncated(registry: CollectorRegistry) -> None:
    handler = Failing(RuntimeError("db login with password=hunter2 and key s3cr3t " + "x" * 500))
    [letter] = await middleware(handler, registry, secrets=["s3cr3t"], max_message_chars=40)(input_record())
    message = read_envelope(letter.headers)[headers.DLQ_ERROR_MESSAGE]
    assert len(message) == 40
    assert message.endswith("...")
    assert "hunter2" not in message
    assert "s3cr3t" not in message


async def test_an_error_without_a_message_is_described_by_its_type(registry: CollectorRegistry) -> None:
    [letter] = await middleware(Failing(RuntimeError()), registry)(input_record())
    assert read_envelope(letter.headers)[headers.DLQ_ERROR_MESSAGE] == "RuntimeError"


# --- blocking retries ------------------------------------------------------------------------


async def test_a_transient_error_is_retried_with_backoff_and_then_succeeds(
    registry: CollectorRegistry, sleeps: Sleeps
) -> None:
    policy = RetryPolicy(attempts=4, backoff_ms=100, max_backoff_ms=250)
    handler = Failing(TransientError("busy"), TimeoutError(), ConnectionError("reset"))

    [out] = await middleware(handler, registry, retry=policy)(input_record())

    assert out.topic == "out"
    assert handler.calls == 4
    # Exponential with jitter: each sleep within [ceiling/2, ceiling], the ceiling capped.
    ceilings = [0.1, 0.2, 0.25]
    assert len(sleeps.delays) == 3
    for delay, ceiling in zip(sleeps.delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert [sample(registry, "t_retries_total", attempt=str(a)) for a in (1, 2, 3)] == [1, 1, 1]
    assert dead_lettered(registry, "retries_exhausted") == 0


async def test_a_transient_error_that_persists_is_dead_lettered_as_retries_exhausted(
    registry: CollectorRegistry, sleeps: Sleeps
) -> None:
    handler = Failing(*(TransientError("busy") for _ in range(10)))
    [letter] = await middleware(handler, registry, retry=RetryPolicy(attempts=3, backoff_ms=1))(
        input_record()
    )

    assert handler.calls == 3
    assert len(sleeps.delays) == 2
    envelope = read_envelope(letter.headers)
    assert envelope[headers.DLQ_ERROR_CATEGORY] == "retries_exhausted"
    assert (envelope[headers.DLQ_ERROR_TYPE], envelope[headers.DLQ_ATTEMPTS]) == ("TransientError", "3")
    assert dead_lettered(registry, "retries_exhausted") == 1


async def test_a_permanent_error_after_transient_ones_stops_the_retries(
    registry: CollectorRegistry, sleeps: Sleeps
) -> None:
    handler = Failing(TransientError("busy"), ValueError("bad"))
    [letter] = await middleware(handler, registry, retry=RetryPolicy(attempts=5, backoff_ms=1))(
        input_record()
    )
    assert handler.calls == 2
    assert read_envelope(letter.headers)[headers.DLQ_ERROR_CATEGORY] == "processing"
    assert read_envelope(letter.headers)[headers.DLQ_ATTEMPTS] == "2"


def test_retry_backoff_doubles_up_to_its_ceiling_and_stays_within_jitter_bounds() -> None:
    policy = RetryPolicy(attempts=6, backoff_ms=200, max_backoff_ms=1_000)
    assert [policy.ceiling_ms(a) for a in range(1, 6)] == [200, 400, 800, 1_000, 1_000]
    assert policy.worst_case_ms() == 200 + 400 + 800 + 1_000 + 1_000
    assert RetryPolicy(attempts=1).worst_case_ms() == 0
    for attempt in range(1, 6):
        delays = [policy.delay_s(attempt) for _ in range(200)]
        ceiling = policy.ceiling_ms(attempt) / 1000
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > 0  # jittered, not fixed
    # A huge attempt number does not overflow the doubling.
    assert policy.ceiling_ms(10_000) == 1_000


# --- the retry topic -------------------------------------------------------------------------


def on_retry_topic(hop: OutgoingRecord, offset: int) -> Any:
    """The hop as the retry-topic consumer reads it back."""
    return record(
        RETRY, 0, offset, key=hop.key, value=hop.value, headers=hop.headers, timestamp=TIMESTAMP + 1
    )


async def test_after_the_blocking_tries_the_record_hops_to_the_retry_topic(
    registry: CollectorRegistry, sleeps: Sleeps
) -> None:
    topic = RetryTopic(RETRY, hops=2, delay_ms=5_000)
    handler = Failing(*(TransientError("busy") for _ in range(100)))
    dlq = middleware(handler, registry, retry=RetryPolicy(attempts=2, backoff_ms=1), retry_topic=topic)

    before = int(time.time() * 1000)
    [hop] = await dlq(input_record())
    after = int(time.time() * 1000)

    assert (hop.topic, hop.key, hop.value) == (RETRY, b"k-1", b"\xff raw")
    assert hop.headers[:2] == INPUT_HEADERS
    assert header(hop.headers, headers.RETRY_ATTEMPTS) == "2"
    assert before + 5_000 <= int(header(hop.headers, headers.RETRY_DUE_AT) or 0) <= after + 5_000
    origin = (headers.RETRY_ORIGINAL_TOPIC, headers.RETRY_ORIGINAL_PARTITION, headers.RETRY_ORIGINAL_OFFSET)
    assert [header(hop.headers, h) for h in origin] == ["in", "3", "42"]
    assert header(hop.headers, headers.RETRY_ORIGINAL_TIMESTAMP) == str(TIMESTAMP)
    assert sample(registry, "t_retry_topic_hops_total") == 1

    # Second hop, from the retry topic: the delay doubles, the attempts add up, the origin stays.
    [hop2] = await dlq(on_retry_topic(hop, offset=7))
    assert hop2.topic == RETRY
    assert header(hop2.headers, headers.RETRY_ATTEMPTS) == "4"
    due2 = int(header(hop2.headers, headers.RETRY_DUE_AT) or 0)
    assert before + 10_000 <= due2 <= int(time.time() * 1000) + 10_000
    assert [v for k, v in hop2.headers if k == headers.RETRY_ORIGINAL_OFFSET] == [b"42"]
    assert sample(registry, "t_retry_topic_hops_total") == 2

    # The hops are used up: the record is dead-lettered as the input record it came from.
    [letter] = await dlq(on_retry_topic(hop2, offset=9))
    assert (letter.topic, letter.key, letter.value) == (DLQ, b"k-1", b"\xff raw")
    assert original_headers(letter.headers) == INPUT_HEADERS  # no retry.* headers left
    envelope = read_envelope(letter.headers)
    assert (envelope[headers.DLQ_ORIGINAL_TOPIC], envelope[headers.DLQ_ORIGINAL_PARTITION]) == ("in", "3")
    assert envelope[headers.DLQ_ORIGINAL_OFFSET] == "42"
    assert envelope[headers.DLQ_ORIGINAL_TIMESTAMP] == str(TIMESTAMP)
    assert envelope[headers.DLQ_ERROR_CATEGORY] == "retries_exhausted"
    assert envelope[headers.DLQ_ATTEMPTS] == "6"
    assert sample(registry, "t_retry_topic_hops_total") == 2
    assert dead_lettered(registry, "retries_exhausted") == 1


async def test_a_permanent_error_on_the_retry_topic_counts_earlier_attempts(
    registry: CollectorRegistry, sleeps: Sleeps
) -> None:
    topic = RetryTopic(RETRY, hops=3, delay_ms=10)
    dlq = middleware(Failing(TransientError("busy"), ValueError("bad")), registry, retry_topic=topic)
    [hop] = await dlq(input_record())
    [letter] = await dlq(on_retry_topic(hop, offset=0))
    envelope = read_envelope(letter.headers)
    assert (envelope[headers.DLQ_ERROR_CATEGORY], envelope[headers.DLQ_ATTEMPTS]) == ("processing", "2")
    assert envelope[headers.DLQ_ORIGINAL_OFFSET] == "42"


async def test_now_waits_only_for_a_blocking_retry(
    registry: CollectorRegistry, sleeps: Sleeps, entry: str
) -> None:
    """`now` goes on in `Waits` only when a transient failure is retried in place; with no blocking
    retries left, or a permanent error, it routes the record at once."""
    retry = RetryPolicy(attempts=2, backoff_ms=1)
    retrying = middleware(Failing(TransientError("busy")), CollectorRegistry(), retry=retry)
    no_retry = middleware(Failing(TransientError("busy")), CollectorRegistry())
    permanent = middleware(Failing(ValueError("bad")), CollectorRegistry(), retry=retry)

    [out] = await retrying(input_record())
    [exhausted] = await no_retry(input_record())
    [dead] = await permanent(input_record())

    assert out.topic == "out"
    assert read_envelope(exhausted.headers)[headers.DLQ_ERROR_CATEGORY] == "retries_exhausted"
    assert read_envelope(dead.headers)[headers.DLQ_ERROR_CATEGORY] == "processing"
    waited = [retrying.waited, no_retry.waited, permanent.waited]
    assert waited == ([1, 0, 0] if entry == "now" else [0, 0, 0])
