"""Key-ordered concurrency against real Kafka: an async processor that waits 1-30 ms and fails 2 % of
first attempts, 20,000 orders over 500 keys, crashes and failover, in both guarantees."""

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kafka_delivery.handlers.retry import header
from kafka_delivery.headers import INPUT_OFFSET, INPUT_PARTITION
from order_service.cli.samples import encode, sample_order
from tests.integration.test_exactly_once import wait_progress
from tests.support.kafka import produce, read_all, wait_all_committed
from tests.support.orders import Record
from tests.support.processors import fails_first
from tests.support.service import ServiceProcess, ServiceTopics

Service = Callable[..., ServiceProcess]
ORDERS, KEYS = 20_000, 500
GUARANTEES = {
    "at_least_once": {},
    "exactly_once": {"delivery__guarantee": "exactly_once"},
}
SETTINGS = {
    "processing__processor": "tests.support.processors:slow",
    "processing__ordering": "key",
    # Not SHORT_SESSION: with 1000-record batches of a slow processor, an instance that must give up
    # its partitions in a rebalance first finishes what it holds, which on 2 busy cores can take
    # longer than 3 s; its session expired and a partition came back to the same process (seen once).
    "consumer__session_timeout_ms": "6000",
    "consumer__heartbeat_interval_ms": "1000",
}


def keyed_orders() -> list[Record]:
    """Order ids unique, keys shared: order i has key `key-<i % 500>`."""
    rng = random.Random(11)
    return [
        (f"key-{i % KEYS}".encode(), encode(sample_order(i, rng, prefix="conc")), []) for i in range(ORDERS)
    ]


def instance(service: Service, guarantee: str, call_log: Path) -> ServiceProcess:
    process = service(**SETTINGS, **GUARANTEES[guarantee])
    process.env["TEST_CALL_LOG"] = str(call_log)
    return process


async def check_outcomes(kafka: str, topics: ServiceTopics, guarantee: str, call_log: Path) -> None:
    await wait_all_committed(kafka, topics.input, topics.group, timeout=180)
    inputs = await read_all(kafka, topics.input, expected=ORDERS)
    where = {json.loads(r.value)["order_id"]: (r.partition, r.offset, r.key) for r in inputs}
    outputs = await read_all(kafka, topics.output, expected=ORDERS, timeout=120)
    counts = Counter(json.loads(r.value)["order_id"] for r in outputs)
    lost = set(where) - set(counts)
    duplicates = {order_id: n for order_id, n in counts.items() if n > 1}
    print(f"{guarantee}: {len(outputs)} outputs for {ORDERS} inputs, {len(duplicates)} duplicated")
    assert lost == set(), f"{len(lost)} orders have no outcome"
    if guarantee == "exactly_once":
        assert duplicates == {}, "read_committed shows a duplicate"
    assert_outputs_in_input_order(outputs)
    assert_calls_in_key_order(call_log, where)
    retried = sum(1 for order_id in where if fails_first(order_id))
    assert retried > 0, "the processor failed some first attempts"


def assert_outputs_in_input_order(outputs: list[Any]) -> None:
    """Within each output partition, the orders of one input partition come in input offset order
    (their first occurrence: an at-least-once repeat comes after)."""
    seen: set[tuple[int, int]] = set()
    last: dict[tuple[int, int], int] = {}
    for record in outputs:
        source = (
            int(header(record.headers, INPUT_PARTITION) or -1),
            int(header(record.headers, INPUT_OFFSET) or -1),
        )
        if source in seen:
            continue
        seen.add(source)
        lane = (record.partition, source[0])
        assert source[1] > last.get(lane, -1), (
            f"output partition {record.partition} out of input order at {source}"
        )
        last[lane] = source[1]


def assert_calls_in_key_order(call_log: Path, where: dict[str, tuple[int, int, bytes]]) -> None:
    """In each process, one key's calls never overlap, and start in increasing input offset order
    (a blocking retry calls the same record again)."""
    running: dict[tuple[str, bytes], str] = {}
    last: dict[tuple[str, bytes], int] = defaultdict(lambda: -1)
    calls = 0
    for line in call_log.read_text().splitlines():
        pid, order_id, what = line.split()
        _, offset, key = where[order_id]
        chain = (pid, key)
        if what == "start":
            calls += 1
            assert chain not in running, f"key {key!r} ran {order_id} while {running.get(chain)} was running"
            assert offset >= last[chain], f"key {key!r} called at offset {offset} after {last[chain]}"
            running[chain], last[chain] = order_id, offset
        else:
            running.pop(chain, None)
    assert calls >= ORDERS


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_a_crash_at_30_percent_then_a_restart_loses_nothing(
    kafka: str, topics: ServiceTopics, service: Service, guarantee: str, tmp_path: Path
) -> None:
    call_log = tmp_path / "calls.log"
    await produce(kafka, topics.input, keyed_orders())
    first = instance(service, guarantee, call_log).start()
    done = await wait_progress(kafka, topics, ORDERS * 3 // 10)
    first.kill()
    print(f"SIGKILL after {done} of {ORDERS} committed")
    assert done < ORDERS, "the crash landed mid-stream"
    first.start()
    await check_outcomes(kafka, topics, guarantee, call_log)


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_two_instances_one_killed_mid_stream_lose_nothing(
    kafka: str, topics: ServiceTopics, service: Service, guarantee: str, tmp_path: Path
) -> None:
    call_log = tmp_path / "calls.log"
    victim = instance(service, guarantee, call_log).start()
    instance(service, guarantee, call_log).start()
    await produce(kafka, topics.input, keyed_orders())
    done = await wait_progress(kafka, topics, ORDERS * 3 // 10)
    victim.kill()
    print(f"SIGKILL of one instance after {done} of {ORDERS} committed")
    assert done < ORDERS, "the crash landed mid-stream"
    await check_outcomes(kafka, topics, guarantee, call_log)
