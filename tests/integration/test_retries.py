"""Transient errors are retried with backoff, then via the delayed retry topic, then dead-lettered."""

import json
from collections.abc import Callable

import pytest

from kafka_delivery.headers import (
    DLQ_ATTEMPTS,
    DLQ_ERROR_CATEGORY,
    DLQ_ERROR_TYPE,
    DLQ_ORIGINAL_TOPIC,
    DLQ_PREFIX,
    RETRY_PREFIX,
)
from order_service.cli.samples import encode
from tests.support.kafka import produce, read_all
from tests.support.orders import Record, keys, order_ids, valid_orders
from tests.support.service import ServiceProcess, ServiceTopics
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]
FLAKY = {"processing__processor": "tests.support.processors:flaky", "retry__backoff_ms": "50"}


def order(order_id: str) -> Record:
    value = encode({"order_id": order_id, "customer_id": "c-1", "total": "10.00"})
    return (order_id.encode(), value, [("trace", order_id.encode())])


def envelope(record: object) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers if k.startswith(DLQ_PREFIX)}  # type: ignore[attr-defined]


async def test_blocking_retries_recover_exhaust_or_skip_by_error_kind(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    instance = service(**FLAKY, retry__attempts="4").start()
    await produce(kafka, topics.input, [order("transient-3-a"), order("always-b"), order("bug-c")])

    processed = await read_all(kafka, topics.output, expected=1)
    assert order_ids(processed) == ["transient-3-a"]
    dead = {r.key.decode(): envelope(r) for r in await read_all(kafka, topics.dead_letter, expected=2)}
    assert dead["always-b"][DLQ_ERROR_CATEGORY] == "retries_exhausted"
    assert dead["always-b"][DLQ_ATTEMPTS] == "4", "dead-lettered after the configured maximum"
    assert dead["always-b"][DLQ_ERROR_TYPE] == "ConnectionError"
    assert dead["bug-c"][DLQ_ERROR_CATEGORY] == "processing"
    assert dead["bug-c"][DLQ_ATTEMPTS] == "1", "a permanent error is not retried"
    retries = [line for line in instance.output().splitlines() if "transient failure, retry" in line]
    assert len(retries) == 3 + 3, "3 retries for transient-3-a, 3 for always-b, none for bug-c"


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_the_retry_topic_delays_one_record_while_everything_else_flows(
    kafka: str, topics: ServiceTopics, service: Service, guarantee: str
) -> None:
    service(
        **FLAKY,
        retry__attempts="2",
        retry__topic_enabled="true",
        retry__topic_hops="1",
        # Long enough that the 600 others are out (and read) first; the delay itself is not measured.
        retry__topic_delay_ms="2500",
        topics__retry=topics.input + ".retry",
        delivery__guarantee=guarantee,
    ).start()
    others = valid_orders(600, prefix="flow")
    # transient-3: fails twice (blocking), hops, fails once more, then succeeds; always: exhausted.
    await produce(kafka, topics.input, [order("transient-3-x"), order("always-y"), *others])

    early = await read_all(kafka, topics.output, expected=len(others))
    assert "transient-3-x" not in order_ids(early), "the record waits on the retry topic..."
    assert sorted(order_ids(early)) == sorted(keys(others)), "...while the rest flows"

    async def processed_ids() -> list[str]:
        return order_ids(await read_all(kafka, topics.output, expected=len(others)))

    final = await eventually(processed_ids, until=lambda ids: "transient-3-x" in ids, timeout=60)
    assert len(final) == len(others) + 1
    [dead] = await read_all(kafka, topics.dead_letter, expected=1, timeout=60)
    letter = envelope(dead)
    assert dead.key == b"always-y"
    assert dead.headers[0] == ("trace", b"always-y"), "original headers first, retry headers gone"
    assert not any(k.startswith(RETRY_PREFIX) for k, _ in dead.headers)
    assert letter[DLQ_ERROR_CATEGORY] == "retries_exhausted"
    assert letter[DLQ_ATTEMPTS] == "4", "two tries before the hop, two after"
    assert letter[DLQ_ORIGINAL_TOPIC] == topics.input
    assert json.loads(dead.value)["order_id"] == "always-y"
