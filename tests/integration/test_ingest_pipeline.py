"""The consumer reads the next poll while a batch is stored: batches are still stored
one at a time in the order they were read, and a poll read before a rewind or a
rebalance is dropped and read again, so nothing is lost, nothing is applied out of
order, and the stored offsets never skip what was not stored."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaProducer

from e911d.consumers.batch import InboundBatch
from tests.support import eventually, ip_changed, login, sample, wait_consumed

SESSIONS = 100
KEY = "u1"  # one key: one partition, so the order of every event is fixed


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, v, key=KEY.encode()) for v in values])
    finally:
        await producer.stop()


def _events() -> list[bytes]:
    """Every session logs in on one IP, then every session moves to another: applied
    out of order, a session would be left on its first IP or missing."""
    logins = [login("acme", KEY, f"s{i}", "203.0.113.5") for i in range(SESSIONS)]
    moves = [ip_changed("acme", KEY, f"s{i}", "198.51.100.7") for i in range(SESSIONS)]
    return logins + moves


async def _final_state(database: str, topic: str) -> tuple[dict[str, str], int]:
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT session_id, host(ip) AS ip FROM sessions")
        stored = await conn.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = $1", topic
        )
    finally:
        await conn.close()
    return {r["session_id"]: r["ip"] for r in rows}, int(stored)


def _hook(loop: object, before: Callable[[int], Awaitable[None]]) -> None:
    """Run ``before(n)`` ahead of the daemon's own handler for the n-th batch."""
    handlers = loop.handlers  # type: ignore[attr-defined]
    calls = 0

    async def on_batch(batch: InboundBatch) -> None:
        nonlocal calls
        calls += 1
        await before(calls)
        await handlers.on_batch(batch)

    loop.handlers = dataclasses.replace(handlers, on_batch=on_batch)  # type: ignore[attr-defined]


async def test_a_rewind_mid_pipeline_drops_the_poll_read_ahead_and_reads_everything_again(
    broker, topics, make_settings, start_app, database
):
    """The database loses the first batch (a failover to a replica without it) while the
    second is about to be stored and a third was read ahead: the second is refused
    (the offsets went back), the third dropped, and everything read again in order."""
    settings = make_settings(kafka={"poll_max_records": 50, "batch_target_seconds": 0})
    running = await start_app(settings)
    loop = running.app.services.consumer
    lost = asyncio.Event()

    async def lose_the_first_batch(n: int) -> None:
        if n != 2:
            return
        await eventually(lambda: loop.ahead is not None, within=10)
        conn = await asyncpg.connect(database)
        try:
            await conn.execute("DELETE FROM sessions")
            await conn.execute("UPDATE consumer_offsets SET next_offset = 0")
        finally:
            await conn.close()
        lost.set()

    _hook(loop, lose_the_first_batch)
    await _produce(broker.bootstrap_servers, topics.session_events, _events())
    await eventually(lost.is_set, within=20)
    await wait_consumed(running.app, topics.session_events, "e911.session.ip_changed", SESSIONS)
    ips, stored = await _final_state(database, topics.session_events)
    assert ips == {f"s{i}": "198.51.100.7" for i in range(SESSIONS)}
    assert stored == 2 * SESSIONS
    assert loop.dropped_polls >= 1
    assert sample(running.app, "e911_database_rewinds_total") == 1
    assert running.app.sessions_scheduled() == SESSIONS
    assert await running.stop() == 0


async def test_a_rebalance_mid_pipeline_drops_the_poll_read_ahead_and_nothing_is_lost(
    broker, topics, make_settings, start_app, database
):
    """A second instance joins while the first stores a batch with the next poll read
    ahead: the batch in hand is stored before the partitions are given up (as before),
    the poll read ahead is dropped, and whoever owns the partition next reads it again
    from the stored offsets: every session ends on its last IP, every offset stored."""
    settings = make_settings(kafka={"poll_max_records": 50, "batch_target_seconds": 0})
    a = await start_app(settings)
    loop = a.app.services.consumer
    joined: list[object] = []

    async def join_while_storing(n: int) -> None:
        if n != 1:
            return
        await eventually(lambda: loop.ahead is not None, within=10)
        before = loop.generation
        joined.append(await start_app(settings, wait_ready=False))
        # The rebalance has begun: the listener waits for this batch to be stored.
        await eventually(lambda: loop.generation > before, within=30)

    _hook(loop, join_while_storing)
    await _produce(broker.bootstrap_servers, topics.session_events, _events())

    async def done() -> bool:
        ips, stored = await _final_state(database, topics.session_events)
        return stored == 2 * SESSIONS and ips == {f"s{i}": "198.51.100.7" for i in range(SESSIONS)}

    await eventually(done, within=60)
    assert loop.dropped_polls >= 1
    b = joined[0]
    assert a.app.sessions_scheduled() + b.app.sessions_scheduled() == SESSIONS  # type: ignore[attr-defined]
    assert await b.stop() == 0  # type: ignore[attr-defined]
    assert await a.stop() == 0
