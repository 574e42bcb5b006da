"""ProducerSink: records reach the producer as they are, in batches; the future resolves on the
broker's ack of the record's batch."""

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from kafka_delivery.producing.sink import ProducerSink
from kafka_delivery.types import OutgoingRecord
from tests.support.fakes import FakeKafka, wait_until


async def test_records_are_sent_with_topic_key_value_and_headers_untouched() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build, topics=["out"])
    await sink.start()
    headers = [("binary", b"\x00\xff"), ("binary", b"again")]

    await sink.send(OutgoingRecord(topic="out", key=b"k", value=b"v", headers=headers))

    [sent] = kafka.records
    assert (sent.topic, sent.key, sent.value, sent.headers) == ("out", b"k", b"v", headers)
    await sink.stop()
    assert kafka.producers[0].stopped


async def test_records_of_one_turn_share_a_batch_and_its_ack() -> None:
    kafka = FakeKafka(batch_records=100)
    sink = ProducerSink(kafka.build, topics=["out"])
    await sink.start()

    acks = [sink.send(OutgoingRecord(topic="out", key=b"k%d" % n, value=b"%d" % n)) for n in range(5)]
    await asyncio.gather(*acks)

    [batch] = kafka.producers[0].batches
    assert [value for _, value, _ in batch.records] == [b"0", b"1", b"2", b"3", b"4"]
    assert len(set(acks)) == 1
    await sink.stop()


async def test_the_topics_written_to_are_known_before_the_first_record() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build, topics=["out", "dlq"])
    await sink.start()
    assert kafka.producers[0].client.metadata_waits == ["out", "dlq"]
    await sink.stop()


async def test_a_failed_ack_fails_the_future() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build, topics=["out"])
    await sink.start()
    kafka.producers[0].ack_failures.add(KafkaConnectionError())
    ack = sink.send(OutgoingRecord(topic="out", value=b"v"))
    with pytest.raises(KafkaConnectionError):
        await ack
    assert kafka.records == []
    await sink.stop()


async def test_sending_before_start_or_after_stop_is_an_error() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build, topics=["out"])
    with pytest.raises(RuntimeError, match="not started"):
        sink.send(OutgoingRecord(topic="out", value=b"v"))
    await sink.stop()  # stopping a sink never started is harmless
    await sink.start()
    await sink.stop()
    with pytest.raises(RuntimeError, match="not started"):
        sink.send(OutgoingRecord(topic="out", value=b"v"))


async def test_a_producer_that_fails_to_start_is_stopped_and_the_sink_stays_unstarted() -> None:
    kafka = FakeKafka()
    kafka.start_failures[None] = [KafkaConnectionError()]
    sink = ProducerSink(kafka.build, topics=["out"])
    with pytest.raises(KafkaConnectionError):
        await sink.start()
    assert kafka.producers[0].stopped
    with pytest.raises(RuntimeError, match="not started"):
        sink.send(OutgoingRecord(topic="out", value=b"v"))
    await sink.start()
    assert not kafka.producers[1].stopped
    await sink.stop()


async def test_a_producer_stuck_on_its_sequence_numbers_is_re_created_after_the_failed_ack() -> None:
    kafka = FakeKafka()
    sink = ProducerSink(kafka.build, topics=["out"])
    await sink.start()
    stuck = kafka.producers[0]
    stuck.ack_failures.add(OutOfOrderSequenceNumber())
    with pytest.raises(OutOfOrderSequenceNumber):
        await sink.send(OutgoingRecord(topic="out", value=b"lost-ack"))

    # The next record is refused while the producer is re-created (the engine backs off and retries).
    with pytest.raises(KafkaConnectionError, match="re-created"):
        sink.send(OutgoingRecord(topic="out", value=b"refused"))
    await wait_until(lambda: len(kafka.producers) == 2 and kafka.producers[1].started, what="a new producer")
    await sink.send(OutgoingRecord(topic="out", value=b"again"))

    assert stuck.stopped
    assert [r.value for r in kafka.records] == [b"again"]
    await sink.stop()
