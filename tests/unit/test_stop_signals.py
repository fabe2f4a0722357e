"""SIGTERM/SIGINT for ``e911d run`` and ``e911d dev``: the first asks for a graceful
stop, the second cancels, and the handlers that were there before come back."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from e911d.daemon.runtime.stop_signals import capture_signals


async def test_first_signal_requests_a_stop_second_cancels_and_handlers_are_restored() -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("the previous handler must not run inside the block")

    before = {sig: signal.signal(sig, mine) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop_requested = asyncio.Event()

        async def daemon() -> str:
            with capture_signals(stop_requested.set):
                os.kill(os.getpid(), signal.SIGTERM)
                await stop_requested.wait()
                os.kill(os.getpid(), signal.SIGINT)  # the impatient operator
                await asyncio.Event().wait()
            return "not reached"

        task = asyncio.create_task(daemon())
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):
                await task
        assert stop_requested.is_set()
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
