"""The one retry policy (backoff with jitter, cut short by a stop) and the database
error boundary whose transient errors it retries."""

from __future__ import annotations

import asyncio
import random

import pytest
import structlog

from e911d.daemon.core.retry import Backoff, retry
from e911d.daemon.store.db import DatabaseError, errors, is_transient

LOG = structlog.get_logger(__name__)


def test_backoff_grows_to_its_maximum_with_jitter_below_each_step() -> None:
    policy = Backoff(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.5)
    delays = policy.delays(random.Random(1))
    got = [next(delays) for _ in range(8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, ceiling in zip(got, ceilings, strict=True):
        assert ceiling * 0.5 <= delay <= ceiling
    assert len(set(got[4:])) == 4  # jittered: instances do not retry in lock-step


async def test_retry_retries_what_it_is_told_to_then_succeeds() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise DatabaseError("down", transient=True)
        return "up"

    fast = Backoff(initial=0.001, maximum=0.002)
    assert await retry("t", flaky, retry_if=is_transient, log=LOG, backoff=fast) == "up"
    assert calls == 3


async def test_retry_raises_a_permanent_error_at_once_and_gives_up_after_attempts() -> None:
    calls = 0

    async def permanent() -> None:
        nonlocal calls
        calls += 1
        raise DatabaseError("syntax", transient=False)

    with pytest.raises(DatabaseError, match="syntax"):
        await retry("t", permanent, retry_if=is_transient, log=LOG)
    assert calls == 1

    async def always_down() -> None:
        nonlocal calls
        calls += 1
        raise DatabaseError("down", transient=True)

    calls = 0
    fast = Backoff(initial=0.001, maximum=0.002, attempts=4)
    with pytest.raises(DatabaseError, match="down"):
        await retry("t", always_down, retry_if=is_transient, log=LOG, backoff=fast)
    assert calls == 4


async def test_a_stop_cuts_the_wait_short_and_ends_the_retries() -> None:
    stop = asyncio.Event()
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            asyncio.get_running_loop().call_later(0.05, stop.set)
        raise DatabaseError("down", transient=True)

    slow = Backoff(initial=30.0, maximum=30.0)
    with pytest.raises(DatabaseError):
        async with asyncio.timeout(5):
            await retry("t", down, retry_if=is_transient, log=LOG, backoff=slow, stop=stop)
    assert calls == 1 + 1 + 3  # the first, the one the stop woke, three more


def test_the_error_boundary_converts_driver_errors_and_says_which_are_transient() -> None:
    with pytest.raises(DatabaseError) as caught, errors("relay"):
        raise ConnectionResetError("peer gone")
    assert caught.value.transient
    assert caught.value.operation == "relay"
    assert "relay: ConnectionResetError" in str(caught.value)

    import asyncpg

    with pytest.raises(DatabaseError) as caught, errors("checks"):
        raise asyncpg.UndefinedTableError("no such table")
    assert not caught.value.transient

    with pytest.raises(KeyError), errors("checks"):  # not the driver's: passes through
        raise KeyError("x")


def test_a_connection_left_mid_operation_is_a_transient_database_error() -> None:
    # Seen in an outage test: a query cancelled while the server went away leaves the
    # connection "in state 15"; the next use raises InternalClientError, which must be
    # retried like any lost connection, not kill the task that met it.
    import asyncpg

    with pytest.raises(DatabaseError) as caught, errors("reevaluate"):
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        )
    assert caught.value.transient


async def test_a_cancellation_turned_into_another_error_below_is_not_retried() -> None:
    """A driver whose clean-up fails in a silent network replaces the CancelledError
    with its own error; the retry must still end, or a stop waits on a dead database."""
    entered = asyncio.Event()
    attempts = 0

    async def swallowing() -> None:
        nonlocal attempts
        attempts += 1
        try:
            entered.set()
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise TimeoutError("rollback timed out") from None

    task = asyncio.create_task(
        retry("x", swallowing, retry_if=lambda e: isinstance(e, TimeoutError), log=LOG)
    )
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert attempts == 1
