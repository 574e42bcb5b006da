"""The dead-letter guard of a record handler: retries a failing record, then routes it, and only it,
to the retry topic or the DLQ."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import cast

from kafka_delivery.errors import ErrorCategory, classify, safe_message
from kafka_delivery.handlers.envelope import Failure, dead_letter
from kafka_delivery.handlers.retry import RetryPolicy, RetryTopic, is_transient, prior_attempts
from kafka_delivery.operations.metrics import PipelineMetrics
from kafka_delivery.types import (
    ImmediateHandler,
    InputRecord,
    OutgoingRecord,
    RecordHandler,
    Waits,
)

logger = logging.getLogger(__name__)
NO_RETRIES = RetryPolicy(attempts=1)


@dataclass(frozen=True)
class DeadLetterGuard:
    """Wraps a record handler: permanent errors go straight to the DLQ publisher; transient ones are
    retried with backoff, then sent to the retry topic (when there is one), then dead-lettered."""

    handler: RecordHandler
    _: KW_ONLY
    topic: str
    group_id: str
    metrics: PipelineMetrics
    retry: RetryPolicy = NO_RETRIES
    retry_topic: RetryTopic | None = None
    secrets: Sequence[str] = ()
    max_message_chars: int = 512

    def __post_init__(self) -> None:
        # Every series this guard can count, from the start: a counter's first event is an increase
        # only to a series that existed before it. Blocking retries are attempts 1 to attempts - 1.
        for category in ErrorCategory:
            self.metrics.dead_lettered.labels(category.value)
        for attempt in range(1, self.retry.attempts):
            self.metrics.retries.labels(str(attempt))

    async def __call__(self, record: InputRecord) -> Sequence[OutgoingRecord]:
        try:
            return await self.handler(record)
        except Exception as exc:  # noqa: BLE001 - every failure of one record is routed, none escapes
            return await self._failed(record, 1, exc)

    def now(self, record: InputRecord) -> Sequence[OutgoingRecord]:
        """The same, made in the caller (`ImmediateHandler`): a blocking retry raises `Waits`."""
        try:
            return cast(ImmediateHandler, self.handler).now(record)
        except Exception as exc:  # noqa: BLE001 - every failure of one record is routed, none escapes
            if is_transient(exc) and self.retry.attempts > 1:
                raise Waits(self._failed(record, 1, exc)) from None
            return self._settle(record, 1, exc)

    async def _failed(self, record: InputRecord, attempt: int, exc: Exception) -> Sequence[OutgoingRecord]:
        """Attempt `attempt` failed with `exc`: retry transient failures in place, then route."""
        while is_transient(exc) and attempt < self.retry.attempts:
            self.metrics.retries.labels(str(attempt)).inc()
            logger.info("transient failure, retry %d of %s@%s: %r", attempt, record.topic, record.offset, exc)
            await asyncio.sleep(self.retry.delay_s(attempt))
            attempt += 1
            try:
                return await self.handler(record)
            except Exception as again:  # noqa: BLE001 - every failure of one record is routed, none escapes
                exc = again
        return self._settle(record, attempt, exc)

    def _settle(self, record: InputRecord, attempt: int, exc: Exception) -> Sequence[OutgoingRecord]:
        """No more blocking retries after `attempt`: the retry topic, or the DLQ."""
        before = prior_attempts(record)  # attempts made before this delivery (retry topic)
        if not is_transient(exc):
            return [self.route(record, exc, attempts=before + attempt)]
        if self.retry_topic is not None and self.retry_topic.can_hop(record):
            self.metrics.retry_hops.inc()
            return [self.retry_topic.hop(record, attempts=before + attempt)]
        return [self.route(record, exc, attempts=before + attempt, category=ErrorCategory.RETRIES_EXHAUSTED)]

    def route(
        self,
        record: InputRecord,
        exc: BaseException,
        *,
        attempts: int,
        category: ErrorCategory | None = None,
    ) -> OutgoingRecord:
        failure = Failure(
            category=category or classify(exc),
            error_type=type(exc).__name__,
            message=safe_message(exc, secrets=self.secrets, limit=self.max_message_chars),
            attempts=attempts,
        )
        self.metrics.dead_lettered.labels(failure.category.value).inc()
        logger.warning(
            "dead-lettering record %s-%s@%s: %s %s",
            record.topic,
            record.partition,
            record.offset,
            failure.category.value,
            failure.error_type,
        )
        return dead_letter(record, failure, topic=self.topic, group_id=self.group_id)
