"""The FastStream app with its HTTP server, started only once the service can work."""

import inspect
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream
from faststream.asgi.app import cast_uvicorn_params

from order_service.adapters.supervision import Supervisor
from order_service.errors import ConfigurationError

logger = logging.getLogger("order_service")


class OrderServiceApp(AsgiFastStream):
    """The FastStream app with its HTTP server; `--host`/`--port` on the command line still win."""

    def __init__(
        self,
        *args: Any,
        http_defaults: dict[str, Any],
        supervisor: Supervisor,
        prepare: Callable[[], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._http_defaults = http_defaults
        self._supervisor = supervisor
        self._prepare = prepare

    async def run(
        self, log_level: int = logging.INFO, run_extra_options: dict[str, Any] | None = None
    ) -> None:
        try:
            await self._prepare()
        except ConfigurationError as exc:
            logger.error("cannot start: %s", exc)
            raise SystemExit(1) from None
        except Exception as exc:
            logger.error("cannot start: %s: %s", type(exc).__name__, exc)
            logger.debug("start-up failure", exc_info=True)
            raise SystemExit(1) from None
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
        # handler that was there before it; a no-op one lets a clean shutdown exit 0.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _already_handled)
        options = cast_uvicorn_params({**self._http_defaults, **(run_extra_options or {})})
        accepted = set(inspect.signature(uvicorn.Config).parameters)
        config = uvicorn.Config(
            app=self, log_level=log_level, **{k: v for k, v in options.items() if k in accepted}
        )
        await self._supervisor.server(config).serve()
        if self._supervisor.exit_code:
            raise SystemExit(self._supervisor.exit_code)

    async def _start_broker(self) -> None:
        # FastStream starts the broker in a task group after the start-up hooks: a failure there
        # would leave a process that answers HTTP and consumes nothing. End it instead.
        try:
            await super()._start_broker()
        except Exception as exc:  # noqa: BLE001 - whatever it is, the service cannot work without it
            self._supervisor.fail(f"the Kafka consumer could not start: {exc!r}")


def _already_handled(signum: int, frame: object) -> None:
    logger.info("shutdown complete after signal %s", signal.Signals(signum).name)
