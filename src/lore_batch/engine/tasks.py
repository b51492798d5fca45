"""Background tasks whose failures are recorded, never swallowed (the memory engine's and the pool's)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskSet"]

logger = logging.getLogger(__name__)


class TaskSet:
    """The running background tasks of one owner; a task that fails is logged and kept in ``errors``."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.errors: list[BaseException] = []

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this set in the running loop."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def cancel_all(self) -> None:
        """Cancel every running task and wait for them to finish."""
        running = [task for task in self.tasks if not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.errors.append(error)
            logger.error("background task %s failed", task.get_name(), exc_info=error)

    def __repr__(self) -> str:
        return f"TaskSet(running={len(self.tasks)}, failed={len(self.errors)})"
