"""Closing aiokafka clients within a bound, and what is left when a stop is cut short.

aiokafka's stop() may wait on a broker (a held JoinGroup, retries to a broker that is
gone) or fail midway; either way it must not hold up the daemon's shutdown, nor leave
the client's tasks and connections open. The two ``drop_*`` functions reach into
aiokafka's private parts, which is why they live together here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

log = structlog.get_logger("e911d.consumer")

# A stop cut short is cancelled, then given this long to unwind, and its client's
# leftovers (tasks, connections) this long again to close; both take milliseconds.
UNWIND_SECONDS = 0.5


async def close_within(
    closing: Awaitable[None],
    seconds: float,
    what: str,
    abort: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Close an aiokafka client without letting it hang, leak its errors or its sockets.

    With the broker gone, aiokafka's stop() can wait on retries or re-raise the
    CancelledError of its own fetch tasks; neither may stop our shutdown. A stop that
    overruns ``seconds`` or fails is cancelled and awaited, then ``abort`` closes what
    it had not closed yet: a stop cut short midway leaves the client's connections
    open, and they would warn (ResourceWarning) and hold their sockets until collected.
    """
    task = asyncio.ensure_future(closing)
    try:
        async with asyncio.timeout(seconds):
            await asyncio.shield(task)
    except asyncio.CancelledError as exc:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves: not aiokafka's doing
        _close_failed(what, exc, seconds)
    except (TimeoutError, KafkaError, OSError) as exc:
        # Also while a forced stop unwinds: a close that overran is not a new failure.
        _close_failed(what, exc, seconds)
    finally:
        if not _closed_cleanly(task):
            await _abandon(task, abort, what)


def _close_failed(what: str, exc: BaseException, seconds: float) -> None:
    log.warning(
        "kafka_client_close_failed", client=what, error=repr(exc), within_seconds=round(seconds, 2)
    )


def _closed_cleanly(task: asyncio.Future[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


async def _abandon(
    task: asyncio.Future[None], abort: Callable[[], Awaitable[None]] | None, what: str
) -> None:
    """Cancel a stop that overran or failed, wait for it to unwind, then ``abort``."""
    task.cancel()
    await asyncio.wait((task,), timeout=UNWIND_SECONDS)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: it was logged as the close's failure
    if abort is None:
        return
    try:
        async with asyncio.timeout(UNWIND_SECONDS):
            await abort()
    except Exception as exc:  # best effort on the way out: it may not stop the shutdown
        log.warning("kafka_client_abort_failed", client=what, error=repr(exc))


async def _cancel_task(task: asyncio.Future[Any] | None) -> None:
    """Cancel one of a client's background tasks and wait until it has ended."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait((task,))
    if not task.cancelled():
        task.exception()  # ended on its own error while cancelled: nothing left to do


async def drop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Close what an interrupted ``consumer.stop()`` left: its group coordinator's
    tasks, its fetcher's tasks and its client's connections, without leaving the group.

    aiokafka has no public call for this (stop() finishes a pending join before it
    leaves); these are the steps of its stop() other than the leave. The fetcher's
    tasks are cancelled here rather than by its close(), which re-raises their
    CancelledError (with the broker gone, that is how stop() itself fails, before it
    closes the connections).
    """
    coordinator = consumer._coordinator
    if coordinator is not None:
        for name in ("_coordination_task", "_heartbeat_task", "_commit_refresh_task"):
            await _cancel_task(getattr(coordinator, name, None))
    fetcher = consumer._fetcher
    if fetcher is not None:
        await _cancel_task(getattr(fetcher, "_fetch_task", None))
        for pending in list(getattr(fetcher, "_pending_tasks", ())):
            await _cancel_task(pending)
    await consumer._client.close()


async def drop_producer(producer: AIOKafkaProducer) -> None:
    """Close what an interrupted ``producer.stop()`` left: its sender task and its
    client's connections. What was still unsent fails, so no send waits forever.

    aiokafka has no public call for this; these are the steps of its stop() other
    than the flush.
    """
    sender = producer._sender
    task = sender.sender_task if sender is not None else None
    if task is not None:
        task.cancel()  # on its way out it waits for its requests in flight ...
    await producer.client.close()  # ... which fail at once when their connections close
    if task is not None:
        await asyncio.wait((task,))
    producer._message_accumulator.fail_all(KafkaConnectionError("the producer was closed"))
