"""Bulk ingest: set-based writes leave exactly what one statement per event left, a
refused event is still found and dead-lettered, and a slow database pauses fetching."""

from __future__ import annotations

import asyncio
import random

import asyncpg
from aiokafka import AIOKafkaProducer

from e911d.daemon.core.events import (
    AccountDeleted,
    AccountUpserted,
    Address,
    DirectoryChange,
    LocationUpserted,
    UserDeleted,
    UserLocationChanged,
    UserUpserted,
)
from e911d.daemon.store.db import PoolConfig, connect_pool, migrate
from e911d.daemon.store.directory import apply_change
from e911d.daemon.store.directory_bulk import apply_changes
from tests.support import Producer, TopicWatcher, ce, directory, eventually, login, sample


async def _send_many(bootstrap: str, topic: str, values: list[bytes], key: str) -> None:
    """Produce in one go (batched by the client), acknowledged before returning."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10)
    await producer.start()
    try:
        sent = [await producer.send(topic, v, key=key.encode()) for v in values]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


STATE = [
    "SELECT account_id, e911_recommendations FROM accounts ORDER BY 1",
    "SELECT account_id, user_id, e911_recommendations, e911_location_id FROM users ORDER BY 1, 2",
    "SELECT account_id, location_id, name FROM locations ORDER BY 1, 2",
]


def _changes(rng: random.Random, n: int) -> list[DirectoryChange]:
    """Many events on few keys, so one batch repeats keys within and across runs."""
    out: list[DirectoryChange] = []
    for _ in range(n):
        a, u = f"a{rng.randrange(3)}", f"u{rng.randrange(5)}"
        loc = rng.choice([None, "hq", "home"])
        roll = rng.random()
        if roll < 0.35:
            out.append(UserUpserted(a, u, rng.random() < 0.5, loc))
        elif roll < 0.6:
            out.append(UserLocationChanged(a, u, loc, "user"))
        elif roll < 0.75:
            out.append(UserDeleted(a, u))
        elif roll < 0.9:
            out.append(AccountUpserted(a, rng.random() < 0.5))
        elif roll < 0.97:
            addr = Address(street="1 Main", city="X", country="US")
            out.append(LocationUpserted(a, rng.choice(["hq", "home"]), f"n{n}", addr, None))
        else:
            out.append(AccountDeleted(a))
    return out


async def _state(conn: asyncpg.Connection) -> list[list[tuple[object, ...]]]:
    return [[tuple(r) for r in await conn.fetch(q)] for q in STATE]


async def test_bulk_directory_writes_equal_one_statement_per_event(database, other_database):
    one_pool = await connect_pool(PoolConfig(database, min_size=1, max_size=1))
    bulk_pool = await connect_pool(PoolConfig(other_database, min_size=1, max_size=1))
    async with one_pool.acquire() as one, bulk_pool.acquire() as bulk:
        await migrate(one)
        await migrate(bulk)
        rng = random.Random(911)
        for batch_no in range(30):
            changes = _changes(rng, rng.randrange(1, 60))
            async with one.transaction():
                for change in changes:
                    await apply_change(one, change)
            async with bulk.transaction():
                await apply_changes(bulk, changes)
            assert await _state(bulk) == await _state(one), f"batch {batch_no}"
        users = await bulk.fetchval("SELECT count(*) FROM users")
        assert users > 0  # the sequence left something to compare
        # Replaying the same batch changes nothing (idempotent, as the consumer needs).
        before = await _state(bulk)
        async with bulk.transaction():
            await apply_changes(bulk, changes)
        assert await _state(bulk) == before
    await one_pool.close()
    await bulk_pool.close()


async def test_user_refused_in_a_bulk_batch_is_dead_lettered_and_the_rest_lands(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings())
    app = running.app
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("ALTER TABLE users ADD CONSTRAINT no_poison CHECK (user_id <> 'poison')")
    finally:
        await conn.close()
    users = [f"u{i}" for i in range(50)]
    users.insert(20, "poison")
    values = [
        ce(
            "e911.user.upserted",
            {"account_id": "acme", "user_id": u, "e911_recommendations": True},
        )
        for u in users
    ]
    async with TopicWatcher(broker.bootstrap_servers, topics.dead_letter) as dlq:
        await _send_many(broker.bootstrap_servers, topics.directory_events, values, "acme")
        dead = await dlq.wait_for(lambda m: len(m) >= 1)
        await eventually(
            lambda: (
                sample(
                    app,
                    "e911_events_total",
                    topic=topics.directory_events,
                    type="e911.user.upserted",
                )
                == 50
            )
        )
    assert dead[0].headers["e911.dlq.reason"] == b"rejected"
    assert b"poison" in dead[0].value
    conn = await asyncpg.connect(database)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM users WHERE e911_recommendations")
    finally:
        await conn.close()
    assert stored == 50
    assert sample(app, "e911_events_invalid_total", reason="rejected") == 1
    assert await running.stop() == 0


async def test_slow_database_pauses_fetching_and_everything_lands_after(
    broker, topics, make_settings, start_app, database
):
    """While the database does not answer (here: a lock another session holds on the
    sessions table) the batch in hand waits and the consumer is paused, whatever is
    produced meanwhile; once the database answers, everything lands and it resumes."""
    settings = make_settings(kafka={"pause_after_seconds": 0.2, "poll_max_records": 50})
    running = await start_app(settings)
    app = running.app
    loop = app.services.consumer
    logins = {"topic": topics.session_events, "type": "e911.session.login"}
    blocker = await asyncpg.connect(database)
    try:
        async with Producer(broker.bootstrap_servers) as p:
            await p.send_all(topics.directory_events, directory(), "acme")
            await eventually(lambda: loop.batches > 0)
            assert sample(app, "e911_consumer_paused") == 0
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
            await p.send(topics.session_events, login("acme", "u1", "s0", "198.51.100.7"), "u1")
            await eventually(lambda: sample(app, "e911_consumer_paused") == 1, within=15)
            assert loop.paused
            assert loop.consumer.paused() == loop.consumer.assignment()
            values = [login("acme", "u1", f"s{i}", "198.51.100.7") for i in range(1, 2001)]
            await _send_many(broker.bootstrap_servers, topics.session_events, values, "u1")
            # Produced while paused: still paused, nothing counted as consumed.
            assert sample(app, "e911_consumer_paused") == 1
            assert loop.consumer.paused() == loop.consumer.assignment()
            assert sample(app, "e911_events_total", **logins) == 0
            await lock.rollback()
            await eventually(lambda: len(app.schedule) == 2001, within=60)
            # Counted once the batch is durable, after the batch handler (which schedules)
            # has returned to the loop: a moment after the schedule, not before.
            await eventually(lambda: sample(app, "e911_events_total", **logins) == 2001)
            await eventually(lambda: sample(app, "e911_consumer_paused") == 0)
            assert not loop.paused and not loop.consumer.paused()
    finally:
        await blocker.close()
    assert await running.stop() == 0
