"""SIGTERM/SIGINT for ``e911d run`` and ``e911d dev``: first a graceful stop, then a forced one.

The first signal asks for the graceful stop (finish the batch, flush alerts, leave
the group). An operator who presses Ctrl-C again does not want to wait for that: the
second signal cancels the running task, which unwinds every component's cleanup at
once (uvicorn's ``capture_signals`` is the model). On exit the handlers that were
installed before are put back, so an embedding program or a test runner keeps its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

import structlog

log = structlog.get_logger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def capture_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, signals stop gracefully, then by force; must run in the loop."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    previous: dict[signal.Signals, Any] = {sig: signal.getsignal(sig) for sig in HANDLED}
    received = 0

    def handle(sig: signal.Signals) -> None:
        nonlocal received
        received += 1
        if received == 1:
            log.info("stop_requested", signal=sig.name)
            request_stop()
            return
        log.warning("stop_forced", signal=sig.name, signals=received)
        if task is not None and not task.done():
            task.cancel()

    for sig in HANDLED:
        loop.add_signal_handler(sig, handle, sig)
    try:
        yield
    finally:
        for sig in HANDLED:
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous[sig])
