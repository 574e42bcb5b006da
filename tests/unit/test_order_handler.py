"""Handler logic through FastStream's in-memory broker: what each input turns into.

TestKafkaBroker has one partition, offset 0 and no commits, so nothing about offsets is
asserted here; tests/integration covers that against a real broker.
"""

import asyncio
import json
from typing import Any

from faststream.kafka import TestKafkaBroker

from order_service.messaging.envelope import read_envelope
from order_service.messaging.records import OutgoingRecord
from order_service.settings import load_settings
from tests.support.app import create_test_broker


class RecordingSink:
    """Stands in for the producer: keeps what the pipeline sends, acks at once."""

    def __init__(self) -> None:
        self.sent: list[OutgoingRecord] = []

    async def send(self, record: OutgoingRecord) -> "asyncio.Future[Any]":
        self.sent.append(record)
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ack.set_result(None)
        return ack


async def run(*values: bytes) -> list[OutgoingRecord]:
    settings = load_settings()
    sink = RecordingSink()
    broker = create_test_broker(settings, sink)
    async with TestKafkaBroker(broker) as test_broker:
        for value in values:
            await test_broker.publish(value, topic=settings.topics.input, key=b"key-1")
    return sink.sent


async def test_a_valid_order_is_published_processed_and_keyed_by_order_id() -> None:
    [out] = await run(b'{"order_id":"o-7","customer_id":"c","total":"12.00","currency":"USD"}')
    assert (out.topic, out.key) == ("orders.processed", b"o-7")
    body = json.loads(out.value or b"")
    assert (body["order_id"], body["status"], body["total"], body["currency"]) == (
        "o-7",
        "processed",
        "12.00",
        "USD",
    )


async def test_a_business_rejection_is_published_not_dead_lettered() -> None:
    [out] = await run(b'{"order_id":"o-8","customer_id":"c","total":"12.00","currency":"JPY"}')
    assert out.topic == "orders.processed"
    assert json.loads(out.value or b"")["status"] == "rejected"


async def test_a_malformed_record_goes_to_the_dlq_alone_and_the_next_one_is_processed() -> None:
    bad, good = await run(b"{not json", b'{"order_id":"o-9","customer_id":"c","total":"1.00"}')
    assert (bad.topic, bad.key, bad.value) == ("orders.created.dlq", b"key-1", b"{not json")
    envelope = read_envelope(bad.headers)
    assert envelope["dlq.error.category"] == "deserialization"
    assert envelope["dlq.original.topic"] == "orders.created"
    assert good.topic == "orders.processed"
