"""Closing an aiokafka client within a bound: a stop that overruns, fails or is
cancelled with us is cancelled and awaited, and whatever it left open is closed."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from e911d.consumers.closing import close_within
from e911d.consumers.loop import join_hold_seconds


class Stop:
    """A client's stop(): hangs (or fails) and records whether it unwound."""

    def __init__(self, hang: bool = True, error: BaseException | None = None) -> None:
        self.hang = hang
        self.error = error
        self.unwound = False
        self.aborted = 0

    async def stop(self) -> None:
        try:
            if self.error is not None:
                raise self.error
            if self.hang:
                await asyncio.Event().wait()
        finally:
            self.unwound = True

    async def abort(self) -> None:
        self.aborted += 1


async def test_a_stop_that_overruns_is_cancelled_awaited_and_aborted() -> None:
    s = Stop()
    with capture_logs() as logs:
        await close_within(s.stop(), 0.05, "consumer", abort=s.abort)
    assert s.unwound and s.aborted == 1
    assert [(e["event"], e["client"], e["within_seconds"]) for e in logs] == [
        ("kafka_client_close_failed", "consumer", 0.05)
    ]


async def test_a_stop_that_fails_is_aborted() -> None:
    s = Stop(error=KafkaConnectionError("gone"))
    with capture_logs() as logs:
        await close_within(s.stop(), 1.0, "producer", abort=s.abort)
    assert s.aborted == 1
    assert [e["event"] for e in logs] == ["kafka_client_close_failed"]


async def test_a_stop_ending_on_a_cancellation_of_its_own_is_aborted() -> None:
    # aiokafka's consumer.stop() re-raises its fetch tasks' CancelledError when the
    # broker is gone, before it has closed its connections.
    s = Stop(error=asyncio.CancelledError())
    with capture_logs() as logs:
        await close_within(s.stop(), 1.0, "consumer", abort=s.abort)
    assert s.aborted == 1
    assert [e["event"] for e in logs] == ["kafka_client_close_failed"]


async def test_an_abort_that_fails_is_logged_and_the_close_goes_on() -> None:
    async def failing_abort() -> None:
        raise RuntimeError("internals moved")

    with capture_logs() as logs:
        await close_within(Stop().stop(), 0.05, "consumer", abort=failing_abort)
    assert [e["event"] for e in logs] == ["kafka_client_close_failed", "kafka_client_abort_failed"]


async def test_a_clean_stop_needs_no_abort() -> None:
    s = Stop(hang=False)
    with capture_logs() as logs:
        await close_within(s.stop(), 1.0, "producer", abort=s.abort)
    assert s.unwound and s.aborted == 0
    assert logs == []


async def test_cancelled_with_us_the_stop_is_unwound_and_aborted_then_we_end() -> None:
    s = Stop()
    closing = asyncio.create_task(close_within(s.stop(), 30.0, "consumer", abort=s.abort))
    await asyncio.sleep(0.05)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert s.unwound and s.aborted == 1


@pytest.mark.parametrize(
    ("session_ms", "rebalance_ms", "hold"),
    [(10_000, 5_000, 5.0), (10_000, 8_000, 8.0), (30_000, 5_000, 15.0)],
)
def test_a_join_may_be_held_for_the_rebalance_timeout_or_half_the_session(
    session_ms: int, rebalance_ms: int, hold: float
) -> None:
    # Kafka: until every member rejoined, at most the rebalance timeout; the embedded
    # broker: half the session timeout, whatever the rebalance timeout.
    assert join_hold_seconds(session_ms, rebalance_ms) == hold
