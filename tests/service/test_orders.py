"""Handler logic through FastStream's in-memory broker: what each input turns into.

TestKafkaBroker puts every record at offset 0 and commits nothing, so nothing about offsets is
asserted here; tests/integration covers that against a real broker.
"""

import asyncio
import json
from typing import Any

from faststream.kafka import TestKafkaBroker

from kafka_delivery.handlers.envelope import read_envelope
from kafka_delivery.headers import DLQ_ERROR_CATEGORY, DLQ_ORIGINAL_TOPIC
from kafka_delivery.types import OutgoingRecord
from order_service.settings import load_settings
from tests.support.app import create_test_broker
from tests.support.fakes import wait_until


class RecordingSink:
    """Stands in for the producer: keeps what the pipeline sends, acks at once."""

    def __init__(self) -> None:
        self.sent: list[OutgoingRecord] = []

    def send(self, record: OutgoingRecord) -> "asyncio.Future[Any]":
        self.sent.append(record)
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        ack.set_result(None)
        return ack


async def run(*values: bytes) -> list[OutgoingRecord]:
    """What the service sends for `values`: one output (or dead letter) each, in order."""
    settings = load_settings()
    sink = RecordingSink()
    broker, subscriptions = create_test_broker(settings, sink)
    async with TestKafkaBroker(broker) as test_broker:
        for partition, value in enumerate(values):
            # Every record is at offset 0 here: on one partition, the engine would skip the later
            # ones as already seen.
            await test_broker.publish(value, topic=settings.topics.input, key=b"key-1", partition=partition)
        # The delivery engine processes in the background: publishing only hands the record over.
        await wait_until(lambda: len(sink.sent) >= len(values), what="an output per record")
    for subscription in subscriptions:
        await subscription.pipeline.close()
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
    sent = await run(b"{not json", b'{"order_id":"o-9","customer_id":"c","total":"1.00"}')
    # On two partitions (see run), processed concurrently: their outputs come in either order.
    [bad] = [o for o in sent if o.topic == "orders.created.dlq"]
    [good] = [o for o in sent if o.topic == "orders.processed"]
    assert (bad.key, bad.value) == (b"key-1", b"{not json")
    envelope = read_envelope(bad.headers)
    assert envelope[DLQ_ERROR_CATEGORY] == "deserialization"
    assert envelope[DLQ_ORIGINAL_TOPIC] == "orders.created"
    assert json.loads(good.value or b"")["order_id"] == "o-9"
