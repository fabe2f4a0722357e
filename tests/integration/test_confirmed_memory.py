"""A confirmed network is an input of every check's decision, remembered ones included
(docs/spec.md#networks-a-user-confirmed, daemon/core/memo.py): an entry written, changed
or forgotten by anyone (here: another system's SQL) reaches the user's sessions at once
through the NOTIFY, and, when that notice is lost, at the next scheduled check through
the user version the entry's triggers bump. A running daemon, a real broker and
PostgreSQL.

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24, lab
has no network. u1 is assigned hq and works from 100.64.1.1, which no group maps: every
location is offered, and the same decision is then made from memory.
"""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from tests.support import Producer, TopicWatcher, directory, eventually, login, now, sample

AWAY_IP = "100.64.1.1"
WAIT = 30.0
INSERT = (
    "INSERT INTO confirmed_networks (account_id, user_id, key_kind, network_key, location_id, "
    "first_confirmed_at, last_confirmed_at) "
    "VALUES ('acme', 'u1', 'ip_prefix', '100.64.1.0/24', 'home', now(), now())"
)


async def _sql(database: str, *statements: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def in_memory(app) -> float:  # type: ignore[no-untyped-def]
    return sample(app, "e911_checks_decided_in_memory_total")


@pytest.mark.parametrize("notice", ["delivered", "lost"])
async def test_an_entry_written_or_forgotten_reaches_remembered_decisions(
    broker, topics, make_settings, start_app, database, notice
) -> None:
    running = await start_app(make_settings())
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
        earlier = now() - dt.timedelta(seconds=30)
        await p.send(topics.session_events, login("acme", "u1", "s1", AWAY_IP, earlier), "u1")
        (first,) = await alerts.wait_count("e911.alert.raised", 1, within=WAIT)
        assert first.data["recommendation"]["kind"] == "all_locations"
        start = in_memory(app)
        await eventually(lambda: in_memory(app) >= start + 3, within=WAIT)

        notices = sample(app, "e911_directory_notices_total", kind="user")
        lose = (
            ["ALTER TABLE confirmed_networks DISABLE TRIGGER confirmed_networks_notify"]
            if notice == "lost"
            else []
        )
        await _sql(database, *lose, INSERT)
        raised = await alerts.wait_count("e911.alert.raised", 2, within=WAIT)
        assert raised[1].data["recommendation"]["kind"] == "user_confirmed"
        assert [loc["location_id"] for loc in raised[1].data["recommendation"]["locations"]] == [
            "home"
        ]
        # Steady again, from memory; then the entry is forgotten the same way.
        start = in_memory(app)
        await eventually(lambda: in_memory(app) >= start + 3, within=WAIT)
        await _sql(database, "DELETE FROM confirmed_networks")
        raised = await alerts.wait_count("e911.alert.raised", 3, within=WAIT)
        assert raised[2].data["recommendation"]["kind"] == "all_locations"
        heard = sample(app, "e911_directory_notices_total", kind="user") - notices
        assert heard == 0 if notice == "lost" else heard >= 2
    assert await running.stop() == 0


async def test_an_expired_entry_is_deleted_and_stops_deciding(
    broker, topics, make_settings, start_app, database
) -> None:
    """confirmed_network_ttl through the running daemon: housekeeping deletes the entry
    and the user's next decision is made without it."""
    ttl = 4.0
    running = await start_app(make_settings(learning={"confirmed_network_ttl_seconds": ttl}))
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
        conn = await asyncpg.connect(database)
        try:
            confirmed_at = await conn.fetchval(INSERT + " RETURNING last_confirmed_at")
        finally:
            await conn.close()
        earlier = now() - dt.timedelta(seconds=30)
        await p.send(topics.session_events, login("acme", "u1", "s1", AWAY_IP, earlier), "u1")
        (first,) = await alerts.wait_count("e911.alert.raised", 1, within=WAIT)
        assert first.data["recommendation"]["kind"] == "user_confirmed"
        raised = await alerts.wait_count("e911.alert.raised", 2, within=WAIT)
        assert raised[1].data["recommendation"]["kind"] == "all_locations"
        conn = await asyncpg.connect(database)
        try:
            assert await conn.fetchval("SELECT count(*) FROM confirmed_networks") == 0
        finally:
            await conn.close()
        # Not before the TTL had passed since the entry was last confirmed.
        second_at = dt.datetime.fromisoformat(raised[1].data["checked_at"])
        assert (second_at - confirmed_at).total_seconds() >= ttl
    assert await running.stop() == 0
