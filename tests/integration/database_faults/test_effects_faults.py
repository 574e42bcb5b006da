"""Effects exactly once through faults: the service SIGKILLed mid-stream, and its database SIGKILLed
for 15 s. The service as a subprocess, a real Kafka and this directory's own PostgreSQL (conftest.py),
effects counted with SQL."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from bench.postgres import LocalPostgres

from tests.support.effects import (
    STOCK_PROCESSOR,
    assert_effects_exactly_once,
    fill_stock,
    read_effects,
    scarce_stock,
)
from tests.support.kafka import committed_and_end_offsets, produce, read_all, wait_all_committed
from tests.support.orders import Record, valid_orders
from tests.support.service import SHORT_SESSION, ServiceProcess, ServiceTopics, health
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]
GUARANTEES = ["at_least_once", "exactly_once"]


async def committed(kafka: str, topics: ServiceTopics) -> int:
    offsets, _ = await committed_and_end_offsets(kafka, topics.input, topics.group)
    return sum(offset or 0 for offset in offsets.values())


async def outputs_once_committed(kafka: str, topics: ServiceTopics, inputs: list[Record]) -> list[object]:
    await wait_all_committed(kafka, topics.input, topics.group, timeout=180)
    return await read_all(kafka, topics.output, expected=len(inputs), timeout=60)


async def _health(instance: ServiceProcess) -> tuple[int, dict[str, Any]]:
    return health(instance.http_port)


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_a_crash_mid_stream_leaves_every_effect_exactly_once(
    kafka: str, topics: ServiceTopics, service: Service, own_database_url: str, guarantee: str
) -> None:
    inputs = valid_orders(20_000, prefix=f"crash-{guarantee[:3]}")
    initial = scarce_stock(inputs)
    await fill_stock(own_database_url, initial)
    await produce(kafka, topics.input, inputs)
    settings = {
        "processing__processor": STOCK_PROCESSOR,
        "effects__database_url": own_database_url,
        "delivery__guarantee": guarantee,
        **SHORT_SESSION,
    }
    instance = service(**settings).start()
    done = await eventually(
        lambda: committed(kafka, topics),
        until=lambda n: n >= len(inputs) * 3 // 10,
        timeout=180,
        interval=0.05,
        what="30 % of the inputs committed",
    )
    instance.kill()
    print(f"SIGKILL after {done} of {len(inputs)} inputs committed")
    assert done < len(inputs), "the crash landed mid-stream"
    instance.start()
    outputs = await outputs_once_committed(kafka, topics, inputs)
    assert_effects_exactly_once(await read_effects(own_database_url), inputs, initial, outputs)
    if guarantee == "exactly_once":
        assert len(outputs) == len(inputs), "exactly-once: no duplicate output for read_committed readers"
    assert instance.terminate() == 0


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_a_database_outage_holds_records_back_and_loses_nothing(
    kafka: str,
    topics: ServiceTopics,
    service: Service,
    own_postgres: LocalPostgres,
    own_database_url: str,
    guarantee: str,
) -> None:
    url = own_database_url
    inputs = valid_orders(8_000, prefix=f"outage-{guarantee[:3]}")
    initial = scarce_stock(inputs)
    await fill_stock(url, initial)
    instance = service(
        processing__processor=STOCK_PROCESSOR,
        effects__database_url=url,
        delivery__guarantee=guarantee,
        consumer__max_batch_records="200",
    ).start()
    await eventually(lambda: _health(instance), until=lambda h: h[0] == 200, timeout=60, what="ready")
    await produce(kafka, topics.input, inputs[:3_000])
    await eventually(
        lambda: committed(kafka, topics), until=lambda n: n >= 1_000, timeout=60, what="1,000 committed"
    )
    await asyncio.to_thread(own_postgres.kill)
    down_at = time.monotonic()
    await produce(kafka, topics.input, inputs[3_000:])
    status, body = await eventually(
        lambda: _health(instance), until=lambda h: h[0] == 503, timeout=10, what="not ready"
    )
    print(f"while the database is down: {status} {body}")
    assert "database" in body["reason"]
    held = await committed(kafka, topics)
    while time.monotonic() - down_at < 15:  # the outage lasts 15 s: readiness says so throughout
        assert (await _health(instance))[0] == 503
        await asyncio.sleep(0.5)
    assert await committed(kafka, topics) == held, "nothing is committed past records without effects"
    await asyncio.to_thread(own_postgres.start)
    print(f"database back after {time.monotonic() - down_at:.1f} s")
    await eventually(lambda: _health(instance), until=lambda h: h[0] == 200, timeout=60, what="ready again")
    outputs = await outputs_once_committed(kafka, topics, inputs)
    assert_effects_exactly_once(await read_effects(url), inputs, initial, outputs)
    if guarantee == "exactly_once":
        assert len(outputs) == len(inputs)
    assert instance.terminate() == 0
    assert "Traceback" not in instance.output()
