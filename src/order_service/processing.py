"""The processor's lifecycle: a plain processing function, or a factory entered once before the
consumers join and exited once after the last commit (README, "Write your own processor")."""

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy
from order_service.errors import ConfigurationError
from order_service.settings import ENV_PREFIX, ProcessingSettings, Settings

if TYPE_CHECKING:
    import asyncpg

logger = logging.getLogger(__name__)
PROCESSOR_VARIABLE = f"{ENV_PREFIX}PROCESSING__PROCESSOR"
Process = Callable[[OrderCreated, OrderPolicy], OrderProcessed | Awaitable[OrderProcessed]]


@dataclass(frozen=True)
class ProcessorContext:
    """What a factory of the form `factory(context)` is given when the service enters it.

    `database` is the service's pool when `ORDER_SERVICE_EFFECTS__DATABASE_URL` is set (for tables,
    reference data, anything outside a record's transaction), else None. A record's own writes go
    through `kafka_delivery.effects.transaction()`, which commits with its inbox row.
    """

    settings: Settings
    database: "asyncpg.Pool[Any] | None"


class Processor:
    """The processing function the order handler calls, available once `enter` has run.

    A plain function is available from the start; a factory's only between `enter` and `exit`.
    """

    def __init__(self, processing: ProcessingSettings) -> None:
        self._configured = processing.processor
        self._form = processing.form()
        self._stack: contextlib.AsyncExitStack | None = None
        self.process: Process = self._configured if self._form == "function" else _not_entered

    async def enter(self, context: ProcessorContext) -> None:
        """Enter a factory once; ConfigurationError naming the setting when it fails."""
        if self._form == "function" or self._stack is not None:
            return
        stack = contextlib.AsyncExitStack()
        try:
            factory = self._configured
            manager = factory(context) if self._form == "factory_with_context" else factory()
            process = await stack.enter_async_context(manager)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the service cannot start: one line
            await stack.aclose()
            raise ConfigurationError(
                f"{PROCESSOR_VARIABLE}: entering the processor failed: {type(exc).__name__}: {exc}"
            ) from None
        if not callable(process) or _positional(process) < 2:
            await stack.aclose()
            raise ConfigurationError(
                f"{PROCESSOR_VARIABLE}: the factory yielded {type(process).__name__}, not a function "
                "(order, policy) -> OrderProcessed"
            )
        self._stack = stack
        self.process = process
        logger.info("processor entered")

    async def exit(self) -> None:
        """Exit the factory once; an error is logged, not raised: the shutdown goes on."""
        stack, self._stack = self._stack, None
        if stack is None:
            return
        self.process = _not_entered
        try:
            await stack.aclose()
        except Exception as exc:  # noqa: BLE001 - logged; nothing is left to undo
            logger.error("the processor failed to exit: %s: %s", type(exc).__name__, exc)
        else:
            logger.info("processor exited")

    @contextlib.asynccontextmanager
    async def entered(self, context: ProcessorContext) -> AsyncIterator["Processor"]:
        await self.enter(context)
        try:
            yield self
        finally:
            await self.exit()


def _positional(function: Callable[..., Any]) -> int:
    try:
        signature = inspect.signature(function)
    except ValueError:
        return 2
    try:
        signature.bind(None, None)
    except TypeError:
        return 0
    return 2


def _not_entered(order: OrderCreated, policy: OrderPolicy) -> OrderProcessed:
    raise RuntimeError("the processor factory has not been entered, or has exited")
