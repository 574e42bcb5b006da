"""Batches: records into the producer's batches without its per-record send, in order per partition,
one ack per batch; unknown topics, oversized records and a closing producer."""

import asyncio

import pytest
from aiokafka.errors import (
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    ProducerClosed,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from kafka_delivery.producing.batches import Batches
from kafka_delivery.producing.partitioner import Murmur2Partitioner
from kafka_delivery.types import OutgoingRecord
from tests.support.fakes import FakeBatch, FakeKafka, FakeProducer, value_is, wait_until


async def producer(*, batch_records: int = 3, partitions: int = 1) -> FakeProducer:
    kafka = FakeKafka(batch_records=batch_records)
    built = kafka.build()
    built.client.partitions = partitions
    await built.start()
    return built


def out(n: int, *, topic: str = "out", key: bytes | None = b"k") -> OutgoingRecord:
    return OutgoingRecord(topic=topic, key=key, value=b"%d" % n)


async def test_a_partitions_records_reach_the_producer_in_order_across_full_batches() -> None:
    kafka_producer = await producer(batch_records=3)
    batches = Batches(kafka_producer)

    acks = [batches.append(out(n)) for n in range(8)]
    await asyncio.gather(*acks)

    assert [[v for _, v, _ in b.records] for b in kafka_producer.batches] == [
        [b"0", b"1", b"2"],
        [b"3", b"4", b"5"],
        [b"6", b"7"],
    ]
    assert len(set(acks)) == 3, "one ack per batch, shared by its records"
    assert [r.value for r in kafka_producer.kafka.records] == [b"%d" % n for n in range(8)]


async def test_keyed_records_go_to_the_partition_kafkas_default_partitioner_picks() -> None:
    kafka_producer = await producer(batch_records=100, partitions=6)
    batches = Batches(kafka_producer)
    keys = [b"ord-%08d" % n for n in range(60)]

    await asyncio.gather(*(batches.append(OutgoingRecord("out", b"v", key)) for key in keys))

    partitions = list(range(6))
    expected = {key: Murmur2Partitioner()(key, partitions, partitions) for key in keys}
    assert len(set(expected.values())) == 6
    # Each batch is one partition's: its records are those whose keys map to one partition.
    for batch in kafka_producer.batches:
        assert len({expected[k or b""] for k, _, _ in batch.records}) == 1


async def test_a_batch_the_producer_refuses_takes_the_partitions_later_batches_down_with_it() -> None:
    kafka_producer = await producer(batch_records=2)
    kafka_producer.send_failures.add(KafkaTimeoutError(), where=value_is(b"1"), times=1)
    failures: list[BaseException] = []
    batches = Batches(kafka_producer, on_failure=failures.append)

    acks = [batches.append(out(n)) for n in range(4)]
    results = await asyncio.gather(*acks, return_exceptions=True)

    # [2, 3] was queued behind the refused [0, 1]: written, it would precede 0 and 1 sent again.
    assert [type(r) for r in results] == [KafkaTimeoutError] * 4
    assert [type(f) for f in failures] == [KafkaTimeoutError]
    assert kafka_producer.kafka.records == []
    # Once the failure's callbacks have run, the partition takes records again.
    assert await batches.append(out(4)) is None
    assert [r.value for r in kafka_producer.kafka.records] == [b"4"]


async def test_records_appended_before_a_failures_callbacks_ran_fail_and_later_ones_go() -> None:
    kafka_producer = await producer(batch_records=1)
    kafka_producer.send_failures.add(KafkaTimeoutError(), where=value_is(b"0"), times=1)
    batches = Batches(kafka_producer)
    first = batches.append(out(0))
    during: list[BaseException | None] = []

    def on_failure(done: "asyncio.Future[None]") -> None:
        # Runs where the engine learns of the failure: its partition still refuses records.
        with pytest.raises(KafkaTimeoutError):
            batches.append(out(1))
        during.append(done.exception())

    first.add_done_callback(on_failure)
    with pytest.raises(KafkaTimeoutError):
        await first
    await wait_until(lambda: bool(during), what="the callback")
    await asyncio.sleep(0)  # the turn after the callbacks
    assert await batches.append(out(2)) is None
    assert [r.value for r in kafka_producer.kafka.records] == [b"2"]


async def test_a_batch_the_broker_refuses_fails_the_batches_not_handed_over_yet() -> None:
    kafka_producer = await producer(batch_records=1)
    loop = asyncio.get_running_loop()
    first_ack: asyncio.Future[None] = loop.create_future()
    drained = asyncio.Event()
    handed: list[list[bytes | None]] = []

    async def send_batch(batch: FakeBatch, topic: str, *, partition: int) -> "asyncio.Future[None]":
        handed.append([v for _, v, _ in batch.records])
        if len(handed) == 1:
            return first_ack  # in flight
        await drained.wait()  # aiokafka takes a partition's next batch once the previous one is sent
        done: asyncio.Future[None] = loop.create_future()
        done.set_result(None)
        return done

    kafka_producer.send_batch = send_batch  # type: ignore[method-assign]
    batches = Batches(kafka_producer)
    first = batches.append(out(0))
    await wait_until(lambda: len(handed) == 1)
    second = batches.append(out(1))
    await wait_until(lambda: len(handed) == 2)  # being handed over
    third = batches.append(out(2))  # queued behind it

    first_ack.set_exception(KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        async with asyncio.timeout(5):  # without the failure, it waits for the second batch
            await third
    drained.set()
    assert await second is None, "what the producer took is the producer's to decide"
    with pytest.raises(KafkaTimeoutError):
        await first
    assert handed == [[b"0"], [b"1"]]


async def test_a_record_for_a_topic_not_known_yet_is_refused_while_its_metadata_is_fetched() -> None:
    kafka_producer = await producer()
    kafka_producer.client.unknown.add("new")
    batches = Batches(kafka_producer)

    with pytest.raises(UnknownTopicOrPartitionError):
        batches.append(out(0, topic="new"))
    await wait_until(lambda: "new" not in kafka_producer.client.unknown, what="the metadata fetched")
    await asyncio.sleep(0)

    await batches.append(out(1, topic="new"))
    assert kafka_producer.client.metadata_waits == ["new"]


async def test_a_topic_the_broker_refuses_is_refused_with_the_brokers_answer() -> None:
    kafka_producer = await producer()
    kafka_producer.client.unknown.add("forbidden")
    kafka_producer.client.failures["forbidden"] = TopicAuthorizationFailedError()
    batches = Batches(kafka_producer)

    with pytest.raises(UnknownTopicOrPartitionError):
        batches.append(out(0, topic="forbidden"))
    await wait_until(lambda: kafka_producer.client.metadata_waits == ["forbidden"], what="the metadata wait")
    await asyncio.sleep(0)

    with pytest.raises(TopicAuthorizationFailedError):
        batches.append(out(1, topic="forbidden"))


async def test_the_topics_learned_at_start_are_known_at_once() -> None:
    kafka_producer = await producer()
    kafka_producer.client.unknown.update({"a", "b"})
    batches = Batches(kafka_producer)

    await batches.learn(["a", "b"])

    await asyncio.gather(batches.append(out(0, topic="a")), batches.append(out(1, topic="b")))


async def test_a_record_over_the_maximum_request_size_is_refused_at_once() -> None:
    kafka_producer = await producer()
    kafka_producer._max_request_size = 1000
    batches = Batches(kafka_producer)

    with pytest.raises(MessageSizeTooLargeError):
        batches.append(OutgoingRecord("out", b"x" * 2000, b"k"))
    await batches.append(OutgoingRecord("out", b"x" * 500, b"k"))


async def test_flush_waits_until_every_record_is_in_the_producers_hands() -> None:
    kafka_producer = await producer(batch_records=2)
    batches = Batches(kafka_producer)
    for n in range(5):
        batches.append(out(n))
    assert kafka_producer.sent == []

    await batches.flush()

    assert [r.value for r in kafka_producer.sent] == [b"%d" % n for n in range(5)]


async def test_closing_fails_the_records_not_handed_over() -> None:
    kafka_producer = await producer()
    batches = Batches(kafka_producer)
    ack = batches.append(out(0))

    await batches.close(ProducerClosed())

    with pytest.raises(ProducerClosed):
        await ack
    assert kafka_producer.sent == []
    with pytest.raises(RuntimeError, match="closed"):
        batches.append(out(1))
