"""Retries: blocking retries with backoff, and an optional delayed retry topic."""

import asyncio
import functools
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_delivery.headers import (
    INPUT_OFFSET,
    INPUT_PARTITION,
    INPUT_TOPIC,
    INPUT_VIA,
    RETRY_ATTEMPTS,
    RETRY_DUE_AT,
    RETRY_ORIGINAL_OFFSET,
    RETRY_ORIGINAL_PARTITION,
    RETRY_ORIGINAL_TIMESTAMP,
    RETRY_ORIGINAL_TOPIC,
    RETRY_PREFIX,
)
from kafka_delivery.types import Headers, InputRecord, OutgoingRecord

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying: the same record may succeed later."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientError, TimeoutError, ConnectionError)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Blocking retries: `attempts` tries per delivery, exponential backoff with jitter between them."""

    attempts: int = 3
    backoff_ms: int = 200
    max_backoff_ms: int = 5_000

    def ceiling_ms(self, attempt: int) -> int:
        ceiling: int = min(self.max_backoff_ms, self.backoff_ms * 2 ** min(attempt - 1, 30))
        return ceiling

    def delay_s(self, attempt: int) -> float:
        ceiling = self.ceiling_ms(attempt)
        return random.uniform(ceiling / 2, ceiling) / 1000

    def worst_case_ms(self) -> int:
        return sum(self.ceiling_ms(a) for a in range(1, self.attempts))


def header(headers: Headers, name: str) -> str | None:
    values = [v for k, v in headers if k == name]
    return values[-1].decode() if values else None


def prior_attempts(record: InputRecord) -> int:
    return int(header(record.headers, RETRY_ATTEMPTS) or 0)


@dataclass(frozen=True, slots=True)
class Origin:
    topic: str
    partition: int
    offset: int
    timestamp: int


def origin(record: InputRecord) -> Origin:
    """Where a record first entered the service, through any number of retry hops."""
    topic = header(record.headers, RETRY_ORIGINAL_TOPIC)
    if topic is None:
        return Origin(record.topic, record.partition, record.offset, record.timestamp)
    return Origin(
        topic,
        int(header(record.headers, RETRY_ORIGINAL_PARTITION) or -1),
        int(header(record.headers, RETRY_ORIGINAL_OFFSET) or -1),
        int(header(record.headers, RETRY_ORIGINAL_TIMESTAMP) or -1),
    )


@functools.lru_cache(maxsize=4096)
def _text(value: str | int) -> bytes:
    """A topic's or partition's header value, made once."""
    return str(value).encode()


def provenance(record: InputRecord) -> Headers:
    """The `input.*` headers of an output of `record`: its origin, through any retry hops."""
    for name, _ in record.headers:
        if name == RETRY_ORIGINAL_TOPIC:
            break
    else:  # never on the retry topic: the record is its own origin (every record but retried ones)
        return [
            (INPUT_TOPIC, _text(record.topic)),
            (INPUT_PARTITION, _text(record.partition)),
            (INPUT_OFFSET, str(record.offset).encode()),
        ]
    first = origin(record)
    headers: Headers = [
        (INPUT_TOPIC, first.topic.encode()),
        (INPUT_PARTITION, str(first.partition).encode()),
        (INPUT_OFFSET, str(first.offset).encode()),
    ]
    if (record.topic, record.partition, record.offset) != (first.topic, first.partition, first.offset):
        headers.append((INPUT_VIA, f"{record.topic}/{record.partition}/{record.offset}".encode()))
    return headers


def without_retry_headers(headers: Headers) -> Headers:
    return [(k, v) for k, v in headers if not k.startswith(RETRY_PREFIX)]


@dataclass(frozen=True, slots=True)
class RetryTopic:
    """After blocking retries, a record waits on `topic` for `delay_ms` (doubling per hop)."""

    topic: str
    hops: int = 3
    delay_ms: int = 5_000

    def can_hop(self, record: InputRecord) -> bool:
        return record.topic != self.topic or self._hops_done(record) < self.hops

    def _hops_done(self, record: InputRecord) -> int:
        return sum(1 for k, _ in record.headers if k == RETRY_DUE_AT)

    def hop(self, record: InputRecord, *, attempts: int) -> OutgoingRecord:
        hops = self._hops_done(record) + 1
        due = int(time.time() * 1000) + self.delay_ms * 2 ** (hops - 1)
        first = origin(record)
        headers = [
            *(record.headers if record.topic == self.topic else without_retry_headers(record.headers)),
            (RETRY_ATTEMPTS, str(attempts).encode()),
            (RETRY_DUE_AT, str(due).encode()),
        ]
        if record.topic != self.topic:
            headers += [
                (RETRY_ORIGINAL_TOPIC, first.topic.encode()),
                (RETRY_ORIGINAL_PARTITION, str(first.partition).encode()),
                (RETRY_ORIGINAL_OFFSET, str(first.offset).encode()),
                (RETRY_ORIGINAL_TIMESTAMP, str(first.timestamp).encode()),
            ]
        return OutgoingRecord(topic=self.topic, key=record.key, value=record.value, headers=headers)


def due_in_s(record: InputRecord) -> float:
    due = header(record.headers, RETRY_DUE_AT)
    return 0.0 if due is None else max(0.0, int(due) / 1000 - time.time())


class DelayGate:
    """Holds a partition whose next record is not due yet: seek back to it, pause, resume when due."""

    def split(self, records: Sequence[InputRecord]) -> tuple[list[InputRecord], InputRecord | None]:
        for i, record in enumerate(records):
            if due_in_s(record) > 0:
                return list(records[:i]), record
        return list(records), None

    def hold(self, consumer: AIOKafkaConsumer, record: InputRecord) -> None:
        tp = TopicPartition(record.topic, record.partition)
        consumer.seek(tp, record.offset)
        consumer.pause(tp)
        asyncio.get_running_loop().call_later(due_in_s(record), _resume, consumer, tp)


def _resume(consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
    if tp in consumer.assignment():
        consumer.resume(tp)
