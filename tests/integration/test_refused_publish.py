"""Dead letters always fit, and a publish the broker refuses for good blocks its partition visibly."""

import asyncio
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.support.kafka import (
    committed_and_end_offsets,
    create_topics,
    hosts,
    produce,
    read_all,
    unique,
    wait_all_committed,
)
from tests.support.orders import order_ids, valid_orders
from tests.support.service import ServiceProcess, ServiceTopics, health, scrape, total
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]
GUARANTEES = ["at_least_once", "exactly_once"]
# Just under the broker's default message.max.bytes (1,048,588): the input topic accepts it, and
# its dead letter (the same bytes plus the dlq.* headers) is over the default 1 MiB request size.
NEAR_LIMIT = 1_048_400
BLOCKED = "order_service_blocked_partitions"
LAG = "order_service_consumer_lag_records"
STALLS = "order_service_partition_stalls"


async def set_max_message_bytes(bootstrap: str, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=hosts(bootstrap))
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)})
        await admin.alter_configs([resource])
    finally:
        await admin.close()


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_a_near_limit_record_is_dead_lettered_and_the_orders_behind_it_come_out(
    kafka: str, guarantee: str
) -> None:
    topics = ServiceTopics(input=unique("orders.big"))
    await create_topics(kafka, [topics.input], partitions=1)
    big = (b"big-one", b"x" * NEAR_LIMIT, [("origin", b"test")])
    valid = valid_orders(3, prefix=f"behind-big-{guarantee}")
    await produce(kafka, topics.input, [big, *valid], max_request_size=2 * 1024 * 1024)
    service = ServiceProcess(kafka, topics, delivery__guarantee=guarantee).start()
    try:
        dead = await read_all(kafka, topics.dead_letter, expected=1, timeout=60)
        processed = await read_all(kafka, topics.output, expected=3, timeout=60)
        await wait_all_committed(kafka, topics.input, topics.group)
    finally:
        service.stop()
        print(service.output()[-3000:])
    assert len(dead) == 1
    assert dead[0].key == b"big-one"
    assert dead[0].value == big[1]
    assert ("origin", b"test") in dead[0].headers
    assert sorted(order_ids(processed)) == sorted(key.decode() for key, _, _ in valid if key)


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_a_refused_dead_letter_blocks_its_partition_visibly_and_lands_once_allowed(
    kafka: str, topics: ServiceTopics, service: Service, guarantee: str
) -> None:
    instance = service(
        delivery__guarantee=guarantee, delivery__backoff_ms="200", delivery__stall_after_s="1.5"
    ).start()
    await produce(kafka, topics.input, valid_orders(60, prefix=f"before-{guarantee}"))
    await wait_all_committed(kafka, topics.input, topics.group)
    await set_max_message_bytes(kafka, topics.dead_letter, 1000)

    await produce(kafka, topics.input, [(b"too-big-for-the-dlq", b"{" * 2000, [])])
    inputs = await read_all(kafka, topics.input, expected=61)
    bad = next(r for r in inputs if r.key == b"too-big-for-the-dlq")
    label = {"topic": topics.input, "partition": str(bad.partition)}

    metrics = await eventually(
        lambda: asyncio.to_thread(scrape, instance.http_port),
        until=lambda m: total(m, BLOCKED, BLOCKED, **label) == 1,
        timeout=30,
        what="the blocked partition in the metrics",
    )
    assert total(metrics, "order_service_publish_refusals", "order_service_publish_refusals_total") >= 1
    lag_series = {labels["partition"] for _, labels, _ in metrics[LAG] if labels["topic"] == topics.input}
    assert lag_series == {str(p) for p in range(6)}, "a lag series for every assigned partition"
    status, body = await asyncio.to_thread(health, instance.http_port)
    assert status == 503
    assert any(line.startswith(f"{topics.input}-{bad.partition}:") for line in body["blocked"]), body
    # Valid orders of the other partitions keep flowing meanwhile.
    later = valid_orders(30, prefix=f"during-{guarantee}")
    await produce(kafka, topics.input, later)
    later_keys = {key for key, _, _ in later}
    elsewhere = {
        r.key.decode()
        for r in await read_all(kafka, topics.input, expected=61 + 30)
        if r.key in later_keys and r.partition != bad.partition
    }
    processed = await read_all(kafka, topics.output, expected=60 + len(elsewhere))
    assert set(order_ids(processed)) >= elsewhere
    committed, _ = await committed_and_end_offsets(kafka, topics.input, topics.group)
    assert (committed[bad.partition] or 0) <= bad.offset
    # Behind its log end with no commit for ORDER_SERVICE_DELIVERY__STALL_AFTER_S: a stall.
    await eventually(
        lambda: asyncio.to_thread(scrape, instance.http_port),
        until=lambda m: total(m, STALLS, f"{STALLS}_total") >= 1,
        timeout=30,
        what="the blocked partition reported as stalled",
    )

    await set_max_message_bytes(kafka, topics.dead_letter, 2 * 1024 * 1024)
    dead = await read_all(kafka, topics.dead_letter, expected=1)
    assert [r.key for r in dead] == [b"too-big-for-the-dlq"]
    await wait_all_committed(kafka, topics.input, topics.group)
    await eventually(
        lambda: asyncio.to_thread(health, instance.http_port),
        until=lambda sb: sb[0] == 200,
        timeout=30,
        what="ready again",
    )
    metrics = await asyncio.to_thread(scrape, instance.http_port)
    assert total(metrics, BLOCKED, BLOCKED, **label) == 0
    assert total(metrics, STALLS, f"{STALLS}_total") >= 1, "the blocked partition was reported as stalled"
