"""The processor's lifecycle: a factory is entered once and exited once; an enter that fails names
the setting, an exit that fails is logged."""

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy, process_order
from order_service.errors import ConfigurationError
from order_service.processing import Processor, ProcessorContext
from order_service.settings import ProcessingSettings, Settings

ORDER = OrderCreated(order_id="o-1", customer_id="c-1", total=10, currency="EUR")
calls: list[str] = []


@contextlib.asynccontextmanager
async def counted() -> AsyncIterator[Any]:
    calls.append("enter")
    try:
        yield process_order
    finally:
        calls.append("exit")


@contextlib.asynccontextmanager
async def with_context(context: ProcessorContext) -> AsyncIterator[Any]:
    calls.append(f"enter group={context.settings.consumer.group_id} database={context.database}")
    yield process_order


@contextlib.asynccontextmanager
async def failing_enter() -> AsyncIterator[Any]:
    raise OSError("cache host unreachable")
    yield process_order  # pragma: no cover


@contextlib.asynccontextmanager
async def failing_exit() -> AsyncIterator[Any]:
    yield process_order
    raise RuntimeError("pool already closed")


@contextlib.asynccontextmanager
async def yielding_nothing_callable() -> AsyncIterator[Any]:
    yield 42


def processor(factory: Any) -> Processor:
    return Processor(ProcessingSettings(processor=factory))


@pytest.fixture(autouse=True)
def no_calls() -> None:
    calls.clear()


CONTEXT = ProcessorContext(Settings(), database=None)


async def test_a_factory_is_entered_once_and_exited_once() -> None:
    p = processor(counted)
    with pytest.raises(RuntimeError, match="not been entered"):
        p.process(ORDER, OrderPolicy())
    await p.enter(CONTEXT)
    await p.enter(CONTEXT)
    outcome = p.process(ORDER, OrderPolicy())
    assert isinstance(outcome, OrderProcessed)
    assert outcome.status == "processed"
    await p.exit()
    await p.exit()
    assert calls == ["enter", "exit"]
    with pytest.raises(RuntimeError, match="has exited"):
        p.process(ORDER, OrderPolicy())


async def test_a_factory_named_context_gets_the_settings_and_the_pool() -> None:
    async with processor(with_context).entered(CONTEXT):
        pass
    assert calls == ["enter group=order-service database=None"]


async def test_a_plain_function_needs_no_enter() -> None:
    p = processor(process_order)
    outcome = p.process(ORDER, OrderPolicy())
    assert isinstance(outcome, OrderProcessed)
    assert outcome.status == "processed"
    await p.enter(CONTEXT)
    await p.exit()


async def test_an_enter_that_fails_names_the_setting_and_the_cause() -> None:
    with pytest.raises(ConfigurationError) as failed:
        await processor(failing_enter).enter(CONTEXT)
    assert str(failed.value) == (
        "ORDER_SERVICE_PROCESSING__PROCESSOR: entering the processor failed: OSError: cache host unreachable"
    )


async def test_a_factory_must_yield_a_processing_function() -> None:
    with pytest.raises(ConfigurationError, match="yielded int, not a function"):
        await processor(yielding_nothing_callable).enter(CONTEXT)


async def test_an_exit_that_fails_is_logged_and_the_shutdown_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = processor(failing_exit)
    await p.enter(CONTEXT)
    with caplog.at_level(logging.ERROR):
        await p.exit()
    assert "the processor failed to exit: RuntimeError: pool already closed" in caplog.text
