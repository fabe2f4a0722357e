"""Learning through the directory topic with a running daemon
(docs/spec.md#networks-a-user-confirmed): a confirmation travels in the batch's
transaction, so a batch the database refuses (another event in it is poison) is
replayed and the confirmation is still learned, once, while the poison goes to the
dead-letter topic.

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24, lab
has no network. u1 works from 100.64.1.1, which no group maps.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import AIOKafkaProducer

from tests.support import Producer, TopicWatcher, ce, directory, eventually, login, sample

AWAY_IP = "100.64.1.1"


async def _query(database: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def test_a_confirmation_in_a_refused_batch_is_learned_once(
    broker, topics, make_settings, start_app, database
) -> None:
    running = await start_app(make_settings())
    app = running.app
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("ALTER TABLE users ADD CONSTRAINT no_poison CHECK (user_id <> 'poison')")
    finally:
        await conn.close()
    async with Producer(broker.bootstrap_servers) as p:
        await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
        await p.send(topics.session_events, login("acme", "u1", "s1", AWAY_IP), "u1")

        async def session_stored() -> bool:
            return bool(await _query(database, "SELECT 1 FROM sessions WHERE session_id = 's1'"))

        await eventually(session_stored, within=30)
    changed = ce(
        "e911.user.location_changed",
        {
            "account_id": "acme",
            "user_id": "u1",
            "e911_location_id": "lab",
            "changed_via": "app",
            "session_id": "s1",
        },
    )
    poison = ce(
        "e911.user.upserted",
        {"account_id": "acme", "user_id": "poison", "e911_recommendations": True},
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=20)
    await producer.start()
    async with TopicWatcher(broker.bootstrap_servers, topics.dead_letter) as dlq:
        try:
            sent = [
                await producer.send(topics.directory_events, v, key=b"acme")
                for v in (changed, poison)
            ]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        dead = await dlq.wait_for(lambda m: len(m) >= 1, within=30)
    assert dead[0].headers["e911.dlq.reason"] == b"rejected"
    assert b"poison" in (dead[0].value or b"")
    rows = await _query(
        database,
        "SELECT user_id, key_kind, network_key, location_id, first_confirmed_at, "
        "last_confirmed_at FROM confirmed_networks",
    )
    assert [tuple(r)[:4] for r in rows] == [("u1", "ip_prefix", "100.64.1.0/24", "lab")]
    assert rows[0]["first_confirmed_at"] == rows[0]["last_confirmed_at"]
    assert sample(app, "e911_events_invalid_total", reason="rejected") == 1
    # Counted once, when the replayed event committed; the other results are at 0.
    assert sample(app, "e911_confirmations_total", result="learned") == 1
    assert sample(app, "e911_confirmations_total", result="sessions_several") == 0
    assert await running.stop() == 0
