"""A background task that runs an action under the pipeline's lock every interval."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class Ticker:
    """Commits what a quiet subscriber left pending; busy ones commit from process() already."""

    def __init__(self, interval_s: float, lock: asyncio.Lock, action: Callable[[], Awaitable[None]]) -> None:
        self._interval_s = interval_s
        self._lock = lock
        self._action = action
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                async with self._lock:
                    await self._action()
            except Exception:
                logger.exception("periodic commit failed; retrying at the next interval")
