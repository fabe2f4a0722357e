"""The one retry policy: exponential backoff with jitter, cut short by a stop request.

Four places wait for something that is not there yet: the pool's first connection, a
transaction while PostgreSQL is away, a Kafka client's start, and the LISTEN
connection. They all use :func:`retry`, so they back off the same way and a stop
request interrupts every one of them at once.

Jitter matters when many instances lose the same database at the same moment: without
it they reconnect in lock-step and hit it together on every attempt.

This is a small helper rather than tenacity or stamina: the policy is twenty lines,
every caller needs the stop event to cut a wait short (neither library has that
without a custom sleep), and a dependency would be one more thing to keep patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class RetryLog(Protocol):
    """Where a retry is reported: the caller's own logger (a structlog logger fits), so
    each warning carries the name of the module that waits, and this policy needs no
    logging library of its own."""

    def warning(self, event: str, /, **kw: Any) -> Any: ...


STOPPING_DELAY = 0.2
"""Once stopping, the last attempts follow each other quickly: the deadline is near."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays of ``initial * multiplier**n`` up to ``maximum``, each drawn from
    ``[delay * (1 - jitter), delay]``; ``attempts`` None retries until stopped."""

    initial: float = 0.2
    maximum: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.5
    attempts: int | None = None

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        draw = rng or random.Random()  # noqa: S311  spreading retries, not security
        delay = self.initial
        while True:
            yield draw.uniform(delay * (1 - self.jitter), delay)
            delay = min(delay * self.multiplier, self.maximum)


STARTUP = Backoff(initial=0.2, maximum=5.0, attempts=30)
"""Start-up: about two minutes of patience for a database or broker still booting."""

BRIEF = Backoff(initial=0.2, maximum=2.0, attempts=5)
"""A command run by a person: a few attempts, then say what is wrong."""

FOREVER = Backoff(initial=0.1, maximum=5.0)
"""In flight: nothing consumed is dropped while a dependency is away; the caller waits."""


async def retry(
    what: str,
    func: Callable[[], Awaitable[T]],
    *,
    retry_if: Callable[[BaseException], bool],
    log: RetryLog,
    backoff: Backoff = FOREVER,
    stop: asyncio.Event | None = None,
    attempts_after_stop: int = 3,
) -> T:
    """Call ``func`` until it succeeds; retry only errors for which ``retry_if`` is true.

    Once ``stop`` is set, at most ``attempts_after_stop`` more attempts are made, so a
    stopping daemon finishes work in hand if the dependency is back, and otherwise
    gives up promptly (raising the last error).
    """
    attempt = 0
    after_stop = 0
    delays = backoff.delays()
    while True:
        attempt += 1
        try:
            return await func()
        except Exception as exc:
            if _cancel_requested():
                # A cancellation that the code below us turned into another error (a
                # driver's clean-up that failed in a silent network): still a
                # cancellation, never a reason to try again.
                raise asyncio.CancelledError from exc
            if not retry_if(exc):
                raise
            if backoff.attempts is not None and attempt >= backoff.attempts:
                raise
            if stop is not None and stop.is_set():
                after_stop += 1
                if after_stop > attempts_after_stop:
                    raise
            delay = next(delays)
            log.warning("retrying", operation=what, attempt=attempt, error=str(exc), delay=delay)
            if stop is None:
                await asyncio.sleep(delay)
            elif stop.is_set():
                await asyncio.sleep(min(delay, STOPPING_DELAY))  # a stop is waiting on us
            else:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                # cancellation that arrives as the stop event fires.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()


def _cancel_requested() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
