"""The processor's lifecycle and its PostgreSQL effects exactly once: the service as a subprocess,
a real Kafka and a real PostgreSQL (`scripts/postgres`), effects counted with SQL."""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.effects import (
    STOCK_PROCESSOR,
    assert_effects_exactly_once,
    fill_stock,
    read_effects,
    scarce_stock,
)
from tests.support.kafka import committed_and_end_offsets, produce, read_all, wait_all_committed
from tests.support.orders import Record, valid_orders
from tests.support.postgres import kill_postgres, start_postgres
from tests.support.service import SHORT_SESSION, ServiceProcess, ServiceTopics, health, import_seconds
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]
PROCESSOR = "ORDER_SERVICE_PROCESSING__PROCESSOR"
GUARANTEES = ["at_least_once", "exactly_once"]


async def committed(kafka: str, topics: ServiceTopics) -> int:
    offsets, _ = await committed_and_end_offsets(kafka, topics.input, topics.group)
    return sum(offset or 0 for offset in offsets.values())


async def outputs_once_committed(kafka: str, topics: ServiceTopics, inputs: list[Record]) -> list[object]:
    await wait_all_committed(kafka, topics.input, topics.group, timeout=180)
    return await read_all(kafka, topics.output, expected=len(inputs), timeout=60)


async def test_a_factory_is_entered_before_the_first_record_and_exited_after_the_last_commit(
    kafka: str, topics: ServiceTopics, service: Service, tmp_path: Path
) -> None:
    log = tmp_path / "lifecycle.log"
    inputs = valid_orders(300, prefix="life")
    await produce(kafka, topics.input, inputs)
    instance = service(processing__processor="tests.support.processors:recorded")
    instance.env["TEST_LIFECYCLE_LOG"] = str(log)
    instance.start()
    await wait_all_committed(kafka, topics.input, topics.group, timeout=60)
    assert instance.terminate() == 0
    lines = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    print(lines)
    assert lines[0] == "enter"
    assert lines[1].startswith("first life-")
    assert lines[2:] == [f"exit committed={len(inputs)}"], "exited once, after every offset was committed"
    output = instance.output()
    assert output.count("processor entered") == 1
    assert output.index("processor entered") < output.index("assigned"), "entered before the group join"


async def test_a_factory_that_fails_to_enter_ends_the_start_in_one_line(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    instance = service(processing__processor="tests.support.processors:refusing")
    imports = import_seconds()
    started = time.monotonic()
    code = instance.start().wait(30)
    elapsed = time.monotonic() - started - max(imports, import_seconds())
    errors = [line for line in instance.output().splitlines() if '"level": "ERROR"' in line]
    print(errors, f"{elapsed:.1f} s")
    assert code == 1
    assert len(errors) == 1
    assert PROCESSOR in errors[0]
    assert "the pricing cache could not be loaded" in errors[0]
    assert "Traceback" not in instance.output()
    assert elapsed < 5, f"exited {elapsed:.1f} s after the interpreter's imports"


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_a_crash_mid_stream_leaves_every_effect_exactly_once(
    kafka: str, topics: ServiceTopics, service: Service, database_url: str, guarantee: str
) -> None:
    inputs = valid_orders(20_000, prefix=f"crash-{guarantee[:3]}")
    initial = scarce_stock(inputs)
    await fill_stock(database_url, initial)
    await produce(kafka, topics.input, inputs)
    settings = {
        "processing__processor": STOCK_PROCESSOR,
        "effects__database_url": database_url,
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
    assert_effects_exactly_once(await read_effects(database_url), inputs, initial, outputs)
    if guarantee == "exactly_once":
        assert len(outputs) == len(inputs), "exactly-once: no duplicate output for read_committed readers"
    assert instance.terminate() == 0


@pytest.mark.parametrize("guarantee", GUARANTEES)
async def test_a_database_outage_holds_records_back_and_loses_nothing(
    kafka: str, topics: ServiceTopics, service: Service, database_url: str, guarantee: str
) -> None:
    url = database_url
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
    kill_postgres()
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
    start_postgres()
    print(f"database back after {time.monotonic() - down_at:.1f} s")
    await eventually(lambda: _health(instance), until=lambda h: h[0] == 200, timeout=60, what="ready again")
    outputs = await outputs_once_committed(kafka, topics, inputs)
    assert_effects_exactly_once(await read_effects(url), inputs, initial, outputs)
    if guarantee == "exactly_once":
        assert len(outputs) == len(inputs)
    assert instance.terminate() == 0
    assert "Traceback" not in instance.output()


async def test_a_wrong_database_password_ends_the_start_naming_the_variable_and_no_secret(
    kafka: str, topics: ServiceTopics, service: Service, database_url: str
) -> None:
    wrong = database_url.replace(":postgres@", ":not-the-Secret-42@")
    assert wrong != database_url
    instance = service(
        processing__processor=STOCK_PROCESSOR, effects__database_url=wrong, effects__connect_timeout_s="5"
    )
    imports = import_seconds()
    started = time.monotonic()
    code = instance.start().wait(30)
    elapsed = time.monotonic() - started - max(imports, import_seconds())
    output = instance.output()
    errors = [line for line in output.splitlines() if '"level": "ERROR"' in line]
    print(errors, f"{elapsed:.1f} s")
    assert code == 1
    assert len(errors) == 1
    assert "ORDER_SERVICE_EFFECTS__DATABASE_URL" in errors[0]
    assert "not-the-Secret-42" not in output
    assert elapsed < 5 + 5, f"exited {elapsed:.1f} s after the imports: more than the connect timeout + 5 s"


async def _health(instance: ServiceProcess) -> tuple[int, dict[str, Any]]:
    return health(instance.http_port)
