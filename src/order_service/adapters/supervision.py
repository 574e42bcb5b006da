"""Bounds on the process's life: start-up reaches a working state in time, shutdown ends in time.

A service that cannot do its job exits non-zero with one line naming the cause; it never lingers
as a live process that consumes nothing.
"""

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvicorn

from kafka_delivery.operations import GroupMembership

logger = logging.getLogger("order_service.adapters.supervision")
# Past the grace period, what is still open is left; a little slack lets the last lines out.
_FORCE_EXIT_SLACK_S = 2.5


class Supervisor:
    """Ends the process when start-up fails or stalls, and bounds every shutdown."""

    def __init__(self, *, grace_s: float, join_timeout_s: float, memberships: Sequence[GroupMembership]):
        self.exit_code = 0
        self._grace_s = grace_s
        self._join_timeout_s = join_timeout_s
        self._memberships = tuple(memberships)
        self._server: uvicorn.Server | None = None
        self._deadline: float | None = None
        self._watchdog: threading.Timer | None = None

    def server(self, config: uvicorn.Config) -> uvicorn.Server:
        """The HTTP server; a signal to it also starts the shutdown clock."""
        supervisor = self

        class _Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                supervisor.shutting_down()
                super().handle_exit(sig, frame)

        self._server = _Server(config)
        return self._server

    def fail(self, cause: str) -> None:
        """The service cannot do its job: one ERROR line, then a bounded shutdown and a non-zero exit."""
        if self.exit_code:
            return
        self.exit_code = 1
        logger.error("stopping: %s", cause)
        self.shutting_down()
        if self._server is not None:
            self._server.should_exit = True

    def shutting_down(self) -> None:
        if self._deadline is not None:
            return
        self._deadline = time.monotonic() + self._grace_s
        self._watchdog = threading.Timer(self._grace_s + _FORCE_EXIT_SLACK_S, self._force_exit)
        self._watchdog.daemon = True
        self._watchdog.start()

    def time_left(self) -> float:
        """Seconds of the grace period left (the whole period before any shutdown began)."""
        return self._grace_s if self._deadline is None else max(0.1, self._deadline - time.monotonic())

    async def bounded(self, what: str, close: Callable[[], Awaitable[None]]) -> None:
        """Runs a shutdown step within the grace period; what it leaves is left for the next owner."""
        try:
            async with asyncio.timeout(self.time_left()):
                await close()
        except TimeoutError:
            logger.warning("shutdown: %s did not finish within the grace period; left as it is", what)
        except Exception as exc:  # noqa: BLE001 - one failed step must not keep the others from running
            logger.warning("shutdown: %s failed: %r", what, exc)

    async def watch_join(self) -> None:
        """Every consumer joins its group within the join timeout, or the process ends."""
        deadline = time.monotonic() + self._join_timeout_s
        while waiting := [m.group for m in self._memberships if not m.joined]:
            if time.monotonic() > deadline:
                self.fail(
                    f"the consumer did not join group {', '.join(waiting)} within {self._join_timeout_s:g}s "
                    "(ORDER_SERVICE_CONSUMER__JOIN_TIMEOUT_S)"
                )
                return
            await asyncio.sleep(0.2)

    def _force_exit(self) -> None:
        logger.error(
            "shutdown did not finish within %gs (ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S): exiting now; "
            "records not yet committed will be processed again by their partition's next owner",
            self._grace_s,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(self.exit_code or 1)
