"""At-least-once delivery of the real service, run as users run it, against a real broker."""

import asyncio
import json
from collections import Counter
from collections.abc import Callable

from tests.support.kafka import (
    produce,
    produce_paced,
    read_all,
    record_count,
    wait_all_committed,
)
from tests.support.orders import ids_by_partition, keys, order_ids, valid_orders
from tests.support.service import SHORT_SESSION, ServiceProcess, ServiceTopics, ready
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]


async def test_ten_thousand_orders_come_out_once_each_keyed_and_in_input_order(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    orders = valid_orders(10_000, prefix="clean")
    await produce(kafka, topics.input, orders)
    instance = service().start()

    output = await read_all(kafka, topics.output, expected=len(orders), timeout=120)

    ids = order_ids(output)
    assert len(ids) == len(set(ids)) == 10_000
    assert all(r.key.decode() == json.loads(r.value)["order_id"] for r in output)
    assert all(json.loads(r.value)["status"] == "processed" for r in output)
    # Same key, same partitioner, same partition count: output partition p replays input partition p.
    inputs = await read_all(kafka, topics.input, expected=len(orders))
    assert ids_by_partition(output) == ids_by_partition(inputs)
    await wait_all_committed(kafka, topics.input, topics.group)
    assert instance.terminate() == 0


async def run_with_restart(kafka: str, topics: ServiceTopics, service: Service, *, how: str) -> Counter[str]:
    """Stop one instance mid-stream (SIGKILL or SIGTERM), start another, and count each order's outputs.

    Mid-stream by construction: the first instance is ready (in its group, partitions assigned)
    before any input arrives, so it follows the paced input instead of meeting a backlog; the stop
    is sent once a fifth of the orders came out, and the second half of the input is only produced
    once the stop was sent, so input keeps arriving while the instance shuts down. A CI run on a
    loaded machine once started the instance after most of the input was on the topic, and it had
    processed all 20,000 before the stop landed."""
    orders = valid_orders(20_000, prefix=how)
    first_half, second_half = orders[: len(orders) // 2], orders[len(orders) // 2 :]
    # A killed instance's partitions move once its session expired: a short one (both instances).
    first = service(consumer__max_batch_records="200", **SHORT_SESSION).start()
    await eventually(
        lambda: ready(first),
        until=lambda s: s == 200,
        timeout=60,
        what="the first instance ready",
    )
    stopping = asyncio.Event()

    async def feed() -> None:
        await produce_paced(kafka, topics.input, first_half)
        await stopping.wait()
        await produce_paced(kafka, topics.input, second_half)

    producing = asyncio.create_task(feed())
    done = await eventually(
        lambda: record_count(kafka, topics.output),
        until=lambda n: n >= 4_000,
        timeout=120,
        what="a fifth of the orders processed",
    )
    stopping.set()
    if how == "kill":
        await asyncio.to_thread(first.kill)
    else:
        assert await asyncio.to_thread(first.terminate) == 0, "SIGTERM exits cleanly"
    at_stop = await record_count(kafka, topics.output)
    print(f"{how}: stopped after at least {done} outputs ({at_stop} once stopped) of {len(orders)}")
    assert at_stop < len(orders), "the stop landed mid-stream"
    await producing
    service(**SHORT_SESSION).start()
    # All input committed first: with duplicates, `expected` output records arrive before every order.
    await wait_all_committed(kafka, topics.input, topics.group, timeout=180)
    output = await read_all(kafka, topics.output, expected=len(orders))
    counts = Counter(order_ids(output))
    assert set(counts) == set(keys(orders)), "no order is lost"
    return counts


async def test_sigkill_mid_stream_loses_nothing(kafka: str, topics: ServiceTopics, service: Service) -> None:
    counts = await run_with_restart(kafka, topics, service, how="kill")
    duplicates = sum(n - 1 for n in counts.values())
    print(f"SIGKILL: {len(counts)} orders, {duplicates} duplicate outputs (allowed: at-least-once)")


async def test_sigterm_mid_stream_loses_nothing_and_duplicates_nothing(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    counts = await run_with_restart(kafka, topics, service, how="term")
    duplicates = {order: n for order, n in counts.items() if n > 1}
    assert duplicates == {}


async def test_static_membership_restart_resumes_where_it_stopped(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    first, second = valid_orders(300, prefix="static-a"), valid_orders(300, prefix="static-b")
    instance = service(consumer__group_instance_id="pod-0")
    instance.start()
    await produce(kafka, topics.input, first)
    await read_all(kafka, topics.output, expected=len(first))
    assert instance.terminate() == 0
    instance.start()  # same instance id: the broker keeps its partitions for the session timeout
    await produce(kafka, topics.input, second)
    output = await read_all(kafka, topics.output, expected=len(first) + len(second))
    assert sorted(order_ids(output)) == sorted(keys(first + second))
    await wait_all_committed(kafka, topics.input, topics.group)
