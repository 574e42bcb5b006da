"""The processor's lifecycle and the effects' start-up: the service as a subprocess, a real Kafka and
a real PostgreSQL (`scripts/postgres`). The crash and outage tests, which kill things, are in
database_faults/ with a server of their own."""

import time
from collections.abc import Callable
from pathlib import Path

from tests.support.effects import STOCK_PROCESSOR
from tests.support.kafka import produce, wait_all_committed
from tests.support.orders import valid_orders
from tests.support.service import ServiceProcess, ServiceTopics, import_seconds

Service = Callable[..., ServiceProcess]
PROCESSOR = "ORDER_SERVICE_PROCESSING__PROCESSOR"


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
