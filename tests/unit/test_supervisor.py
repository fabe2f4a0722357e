"""The supervisor with dummy coroutines: failures stop everything, drains are bounded."""

from __future__ import annotations

import asyncio

import pytest

from e911d.daemon.runtime.supervisor import DrainStep, Supervisor, TaskEndedEarly


async def forever() -> None:
    await asyncio.Event().wait()


async def test_a_task_that_dies_stops_the_daemon_and_is_the_failure() -> None:
    sup = Supervisor()
    boom = RuntimeError("boom")

    async def dies() -> None:
        await asyncio.sleep(0)
        raise boom

    sup.spawn("steady", forever())
    sup.spawn("fragile", dies())
    async with asyncio.timeout(5):
        await sup.stopping.wait()
    assert sup.fatal is boom
    assert not sup.alive()
    assert await sup.cancel_all() == ["steady"]


async def test_only_the_first_failure_is_kept() -> None:
    sup = Supervisor()
    first, second = RuntimeError("first"), RuntimeError("second")
    sup.fail("a", first)
    sup.fail("b", second)
    assert sup.fatal is first


async def test_a_task_that_returns_before_the_stop_is_a_failure() -> None:
    sup = Supervisor()

    async def returns() -> None:
        await asyncio.sleep(0)

    sup.spawn("quitter", returns())
    async with asyncio.timeout(5):
        await sup.stopping.wait()
    assert isinstance(sup.fatal, TaskEndedEarly)


async def test_returning_or_failing_after_a_requested_stop_is_not_a_failure() -> None:
    sup = Supervisor()
    release = asyncio.Event()

    async def returns_when_released() -> None:
        await release.wait()

    async def fails_when_released() -> None:
        await release.wait()
        raise ConnectionError("cut short by the stop")

    a = sup.spawn("a", returns_when_released())
    b = sup.spawn("b", fails_when_released())
    sup.request_stop()
    release.set()
    await asyncio.wait({a, b})
    assert sup.fatal is None
    assert sup.alive()
    assert not sup.running


async def test_drain_runs_steps_in_order_then_cancels_what_is_left() -> None:
    sup = Supervisor()
    order: list[str] = []
    sup.spawn("loop", forever())

    async def step(name: str) -> None:
        await asyncio.sleep(0.01)
        order.append(name)

    steps = [DrainStep(n, lambda n=n: step(n)) for n in ("consumer", "checks", "relay")]
    sup.request_stop()
    await sup.drain(steps, within=5)
    cancelled = await sup.cancel_all()
    assert order == ["consumer", "checks", "relay"]
    assert cancelled == ["loop"]


async def test_drain_is_bounded_by_one_deadline_and_skips_a_stuck_step() -> None:
    sup = Supervisor()
    ran: list[str] = []

    async def stuck() -> None:
        await forever()

    async def quick() -> None:
        ran.append("quick")

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await sup.drain([DrainStep("stuck", stuck), DrainStep("quick", quick)], within=0.3)
    elapsed = loop.time() - t0
    # The stuck step used the whole budget; the next still ran (with a minimal slot).
    assert 0.25 <= elapsed < 2.0
    assert ran == ["quick"]


async def test_a_failing_drain_step_does_not_stop_the_others() -> None:
    sup = Supervisor()
    ran: list[str] = []

    async def broken() -> None:
        raise OSError("gone")

    async def fine() -> None:
        ran.append("fine")

    await sup.drain([DrainStep("broken", broken), DrainStep("fine", fine)], within=2)
    assert ran == ["fine"]


async def test_start_returns_the_result_or_none_when_stopped_first() -> None:
    sup = Supervisor()

    async def quick_start() -> int:
        return 7

    assert await sup.start(quick_start()) == 7

    sup2 = Supervisor()
    entered = asyncio.Event()
    cleaned = asyncio.Event()

    async def slow_start() -> int:
        entered.set()
        try:
            await forever()
        finally:
            cleaned.set()
        return 1

    async def stop_when_entered() -> None:
        await entered.wait()
        sup2.request_stop()

    stopper = asyncio.create_task(stop_when_entered())
    assert await sup2.start(slow_start()) is None
    assert cleaned.is_set()  # the abandoned start-up ran its cleanup before start returned
    await stopper


async def test_start_raises_what_the_start_up_raised() -> None:
    sup = Supervisor()

    async def bad_start() -> int:
        raise ValueError("bad config")

    with pytest.raises(ValueError, match="bad config"):
        await sup.start(bad_start())
