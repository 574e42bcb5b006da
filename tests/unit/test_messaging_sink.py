"""ProducerSink: records reach the producer as they are; the future resolves on the broker's ack."""

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from order_service.messaging.records import OutgoingRecord
from order_service.messaging.sink import ProducerSink
from tests.support.fakes import FakeKafka


async def test_records_are_sent_with_topic_key_value_and_headers_untouched() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build)
    await sink.start()
    headers = [("binary", b"\x00\xff"), ("binary", b"again")]

    ack = await sink.send(OutgoingRecord(topic="out", key=b"k", value=b"v", headers=headers))
    await ack

    [sent] = kafka.records
    assert (sent.topic, sent.key, sent.value, sent.headers) == ("out", b"k", b"v", headers)
    await sink.stop()
    assert kafka.producers[0].stopped


async def test_a_failed_ack_fails_the_future() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build)
    await sink.start()
    kafka.producers[0].ack_failures.add(KafkaConnectionError())
    ack = await sink.send(OutgoingRecord(topic="out", value=b"v"))
    with pytest.raises(KafkaConnectionError):
        await ack
    assert kafka.records == []
    await sink.stop()


async def test_sending_before_start_or_after_stop_is_an_error() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build)
    with pytest.raises(RuntimeError, match="not started"):
        await sink.send(OutgoingRecord(topic="out", value=b"v"))
    await sink.stop()  # stopping a sink never started is harmless
    await sink.start()
    await sink.stop()
    with pytest.raises(RuntimeError, match="not started"):
        await sink.send(OutgoingRecord(topic="out", value=b"v"))


async def test_a_producer_that_fails_to_start_is_stopped_and_the_sink_stays_unstarted() -> None:
    kafka = FakeKafka()
    kafka.start_failures[None] = [KafkaConnectionError()]
    sink = ProducerSink(kafka.build)
    with pytest.raises(KafkaConnectionError):
        await sink.start()
    assert kafka.producers[0].stopped
    with pytest.raises(RuntimeError, match="not started"):
        await sink.send(OutgoingRecord(topic="out", value=b"v"))
    await sink.start()
    assert not kafka.producers[1].stopped
    await sink.stop()


async def test_a_producer_stuck_on_its_sequence_numbers_is_re_created_before_the_next_send() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build)
    await sink.start()
    stuck = kafka.producers[0]
    stuck.ack_failures.add(OutOfOrderSequenceNumber())
    with pytest.raises(OutOfOrderSequenceNumber):
        await (await sink.send(OutgoingRecord(topic="out", value=b"lost-ack")))

    await (await sink.send(OutgoingRecord(topic="out", value=b"again")))

    assert stuck.stopped
    assert len(kafka.producers) == 2
    assert [r.value for r in kafka.records] == [b"again"]
    await sink.stop()
