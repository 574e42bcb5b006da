"""Malformed input goes to the DLQ, record by record, with its original bytes and an envelope."""

import random
from collections.abc import Callable
from datetime import datetime

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kafka_delivery import headers
from order_service.cli.samples import malformed_corpus
from tests.support.kafka import (
    committed_and_end_offsets,
    delete_topics,
    produce,
    read_all,
    topic_exists,
    wait_all_committed,
)
from tests.support.orders import Record, keys, order_ids, valid_orders
from tests.support.service import ServiceProcess, ServiceTopics
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]


def interleave(valid: list[Record], bad: list[Record], seed: int = 11) -> list[Record]:
    records = list(valid)
    rng = random.Random(seed)
    for record in bad:
        records.insert(rng.randrange(len(records) + 1), record)
    return records


async def test_each_malformed_record_is_dead_lettered_once_with_its_bytes_and_envelope(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    corpus = {m.name: m for m in malformed_corpus()}
    assert len(corpus) >= 20
    bad: list[Record] = [
        (f"bad-{m.name}".encode(), m.value, [("trace", f"t-{m.name}".encode()), ("binary", b"\x00\xff")])
        for m in corpus.values()
    ]
    valid = valid_orders(2_000, prefix="mixed")
    await produce(kafka, topics.input, interleave(valid, bad))
    service().start()

    dead = await read_all(kafka, topics.dead_letter, expected=len(bad))
    processed = await read_all(kafka, topics.output, expected=len(valid))
    inputs = await read_all(kafka, topics.input, expected=len(valid) + len(bad))

    assert len(processed) + len(dead) == len(inputs)
    assert sorted(order_ids(processed)) == sorted(keys(valid))
    by_key = {r.key: r for r in dead}
    assert len(by_key) == len(dead) == len(bad), "each malformed record exactly once"
    originals = {r.key: r for r in inputs}
    for key, value, sent in bad:
        letter, original = by_key[key], originals[key]
        assert letter.value == value, key
        assert [h for h in letter.headers if not h[0].startswith(headers.DLQ_PREFIX)] == sent
        envelope = {k: v.decode() for k, v in letter.headers if k.startswith(headers.DLQ_PREFIX)}
        assert envelope[headers.DLQ_ORIGINAL_TOPIC] == topics.input
        assert envelope[headers.DLQ_ORIGINAL_PARTITION] == str(original.partition)
        assert envelope[headers.DLQ_ORIGINAL_OFFSET] == str(original.offset)
        assert envelope[headers.DLQ_ORIGINAL_TIMESTAMP] == str(original.timestamp)
        assert envelope[headers.DLQ_CONSUMER_GROUP] == topics.group
        assert key is not None
        assert envelope[headers.DLQ_ERROR_CATEGORY] == corpus[key.decode().removeprefix("bad-")].category, key
        assert envelope[headers.DLQ_ERROR_TYPE] in {"ValidationError", "DeserializationError"}
        assert 0 < len(envelope[headers.DLQ_ERROR_MESSAGE]) <= 512
        assert envelope[headers.DLQ_ATTEMPTS] == "1"
        assert datetime.fromisoformat(envelope[headers.DLQ_FAILED_AT]).utcoffset() is not None
    await wait_all_committed(kafka, topics.input, topics.group)


async def test_failed_dead_letter_publish_is_not_committed_and_is_retried(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    instance = service(kafka__request_timeout_ms="2000", delivery__backoff_ms="100").start()
    warmup = valid_orders(60, prefix="warmup")
    await produce(kafka, topics.input, warmup)
    await read_all(kafka, topics.output, expected=len(warmup))
    await delete_topics(kafka, [topics.dead_letter])
    await eventually(
        lambda: topic_exists(kafka, topics.dead_letter), until=lambda e: not e, what="DLQ deleted"
    )

    bad = (b"bad-while-dlq-gone", b"not json", [("trace", b"keep-me")])
    after = valid_orders(120, prefix="after")
    await produce(kafka, topics.input, [bad, *after])
    inputs = await read_all(kafka, topics.input, expected=len(warmup) + 1 + len(after))
    bad_input = next(r for r in inputs if r.key == bad[0])

    async def retries_logged() -> int:
        return instance.output().count("will be retried")

    await eventually(retries_logged, until=lambda n: n >= 3, timeout=60, what="three failed DLQ attempts")
    committed, _ = await committed_and_end_offsets(kafka, topics.input, topics.group)
    assert (committed[bad_input.partition] or 0) <= bad_input.offset, "the failed record is not committed"

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topics.dead_letter, 6, 1)])
    finally:
        await admin.close()

    dead = await read_all(kafka, topics.dead_letter, expected=1, timeout=90)
    assert [(r.key, r.value) for r in dead] == [(bad[0], bad[1])]
    assert ("trace", b"keep-me") in dead[0].headers
    # All input committed first: with duplicates, `expected` output records arrive before every order.
    await wait_all_committed(kafka, topics.input, topics.group)
    processed = await read_all(kafka, topics.output, expected=len(warmup) + len(after))
    assert set(order_ids(processed)) == set(keys(warmup + after)), "nothing lost"
    print(f"DLQ publish attempts that failed and were retried: {await retries_logged()}")
