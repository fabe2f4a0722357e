"""Counting a service's work in flight, so that its drain can wait for exactly that."""

from __future__ import annotations

import asyncio
from types import TracebackType


class InFlight:
    """``with in_flight:`` around each unit of work; ``await in_flight.idle()`` to drain.

    A counter rather than a lock: a service may run several units at once (a tick
    and an immediate re-check) and the drain must wait for all of them.
    """

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return self._count

    def __enter__(self) -> None:
        self._count += 1
        self._idle.clear()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def idle(self) -> None:
        await self._idle.wait()
