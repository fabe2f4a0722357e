"""Named background tasks, the first fatal failure, the stop event, a bounded drain.

A daemon that limps is worse than one that stops: if the consumer loop dies and the
ticks go on, sessions are checked against a state nobody updates. So every task is
named and watched, the first failure is kept and stops everything, and the exit code
says so (procrastinate's worker and uvicorn's server are the models).

Stopping is three steps: stop taking new work (the stop event), let each service
finish what it has in flight within one deadline (:meth:`Supervisor.drain`), then
cancel whatever is still running and say what that was.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class TaskEndedEarly(Exception):
    """A task that should run until the stop returned by itself."""


@dataclass(frozen=True, slots=True)
class DrainStep:
    """One service's drain: finish in-flight work, start nothing new."""

    name: str
    drain: Callable[[], Awaitable[None]]


class Supervisor:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.fatal: BaseException | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> bool:
        return self.fatal is None and not self.stopping.is_set()

    def alive(self) -> bool:
        """Liveness: false once a component has failed (the process is about to exit)."""
        return self.fatal is None

    def request_stop(self) -> None:
        self.stopping.set()

    def fail(self, what: str, exc: BaseException) -> None:
        """Record a failure and stop; the first one is what the daemon reports."""
        if self.stopping.is_set() and self.fatal is None:
            # Work cut short by a requested stop is redone by whoever owns the
            # partition next (offsets and schedules live in PostgreSQL): not a failure.
            log.warning("component_stopped_with_error", component=what, error=repr(exc))
            return
        log.error("component_failed", component=what, error=repr(exc))
        if self.fatal is None:
            self.fatal = exc
        self.stopping.set()

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` until the stop; its failure, or an early return, stops the daemon."""
        task = asyncio.create_task(coro, name=f"e911d-{name}")
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._task_done(name, t))
        return task

    def _task_done(self, name: str, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.fail(f"task {name} died", exc)
        elif not self.stopping.is_set():
            self.fail(f"task {name} ended early", TaskEndedEarly(name))

    async def start(self, starting: Coroutine[Any, Any, T]) -> T | None:
        """Run a start-up, or abandon it (None) as soon as a stop is requested.

        A database still unreachable would otherwise hold a Ctrl-C for minutes of
        retries. Whatever the start-up had entered is unwound by its exit stack.
        """
        start = asyncio.create_task(starting, name="e911d-start")
        stop = asyncio.create_task(self.stopping.wait(), name="e911d-stop-wait")
        try:
            done, _ = await asyncio.wait({start, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if start in done:
            return start.result()
        # The stop came first: whatever the start-up does now (finish, fail, or swallow
        # the cancellation in a retry wait) it is abandoned.
        start.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await start
        return None

    async def drain(self, steps: Sequence[DrainStep], within: float) -> None:
        """Run the drains in order within ``within`` seconds in all; a step that
        overruns or fails is logged and the next one still runs. What is still running
        afterwards is for :meth:`cancel_all`."""
        deadline = time.monotonic() + within
        for step in steps:
            left = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(0.05, left)):
                    await step.drain()
            except TimeoutError:
                log.warning("drain_timed_out", step=step.name, within_seconds=within)
            except Exception as exc:
                log.warning("drain_failed", step=step.name, error=repr(exc))

    async def cancel_all(self, within: float | None = None) -> list[str]:
        """Cancel the tasks still running and wait for them, at most ``within`` seconds;
        returns their names. A task still unwinding then (a driver call stuck in a
        silent network) is left to end when its clients are closed."""
        cancelled = [name for name, task in self._tasks.items() if not task.done()]
        for name in cancelled:
            log.info("task_cancelled", task=name)
            self._tasks[name].cancel()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=within)
        for name, task in self._tasks.items():
            if not task.done():
                log.warning("task_still_unwinding", task=name, within_seconds=within)
            elif not task.cancelled():
                task.exception()  # retrieved: reported by _task_done already
        return cancelled
