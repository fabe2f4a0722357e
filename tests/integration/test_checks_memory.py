"""Checks decided from memory: a matched session checked again and again takes
no lock, and every way its inputs can change still reaches the database in time: a
location change through the directory topic, a direct SQL write (NOTIFY), a write
whose notice is lost (the per-tick version backstop), a new IP through ingest.

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24.
The interval is short (1.5 s, ticks of 0.2 s), so each test sees many checks.
"""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from e911d.daemon.store.db import migrate
from tests.support import (
    Producer,
    TopicWatcher,
    directory,
    eventually,
    ip_changed,
    location_changed,
    login,
    now,
    sample,
)

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
WAIT = 30.0


def in_memory(app) -> float:
    return sample(app, "e911_checks_decided_in_memory_total")


def checks(app, outcome: str = "match") -> float:
    return sample(app, "e911_checks_total", outcome=outcome)


async def _matched(running, broker, topics):
    """u1 (toggle on, assigned hq) logged in at hq a while ago: checked at once."""
    p = Producer(broker.bootstrap_servers)
    await p.__aenter__()
    await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
    earlier = now() - dt.timedelta(seconds=30)
    await p.send(topics.session_events, login("acme", "u1", "s1", HQ_IP, earlier), "u1")
    await eventually(lambda: checks(running.app) >= 1, within=WAIT)
    return p


async def _steady(app, more: int = 3) -> None:
    """Until ``more`` further checks were decided from memory."""
    start = in_memory(app)
    await eventually(lambda: in_memory(app) >= start + more, within=WAIT)


async def _sql(database: str, *statements: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.mark.parametrize("decide_in_memory", [True, False])
async def test_a_matched_session_is_checked_from_memory_without_a_lock(
    broker, topics, make_settings, start_app, decide_in_memory
):
    running = await start_app(make_settings(checks={"decide_in_memory": decide_in_memory}))
    app = running.app
    p = await _matched(running, broker, topics)
    try:
        if decide_in_memory:
            await _steady(app, 1)
            asked = checks(app) - in_memory(app)
            # Six more checks of the session, none of them in PostgreSQL.
            await _steady(app, 6)
            assert checks(app) - in_memory(app) == asked
        else:
            await eventually(lambda: checks(app) >= 6, within=WAIT)
            assert in_memory(app) == 0
        assert sample(app, "e911_alerts_raised_total") == 0
    finally:
        await p.__aexit__(None, None, None)
    assert await running.stop() == 0


async def test_a_location_change_through_the_topic_raises_the_alert(
    broker, topics, make_settings, start_app
):
    running = await start_app(make_settings())
    app = running.app
    async with TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts:
        p = await _matched(running, broker, topics)
        try:
            await _steady(app)
            await p.send(
                topics.directory_events,
                location_changed("acme", "u1", "home"),
                "acme",
            )
            raised = (await alerts.wait_count("e911.alert.raised", 1, within=WAIT))[0].data
            assert raised["assigned_location"]["location_id"] == "home"
            # Back to steady state: the same mismatch, from memory, never raised again.
            await _steady(app)
            assert sample(app, "e911_alerts_raised_total") == 1
            assert checks(app, "mismatch") >= 3
        finally:
            await p.__aexit__(None, None, None)
    assert await running.stop() == 0


async def test_a_direct_sql_write_to_users_raises_the_alert(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings())
    app = running.app
    async with TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts:
        p = await _matched(running, broker, topics)
        try:
            await _steady(app)
            await _sql(database, "UPDATE users SET e911_location_id = 'home' WHERE user_id = 'u1'")
            raised = (await alerts.wait_count("e911.alert.raised", 1, within=WAIT))[0].data
            assert raised["assigned_location"]["location_id"] == "home"
            # And back: resolved, through the same path.
            await _steady(app)
            await _sql(database, "UPDATE users SET e911_location_id = 'hq' WHERE user_id = 'u1'")
            resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0].data
            assert resolved["reason"] == "location_updated"
        finally:
            await p.__aexit__(None, None, None)
    assert await running.stop() == 0


@pytest.mark.parametrize("table", ["users", "accounts"])
async def test_a_lost_notice_is_caught_by_the_version_backstop(
    broker, topics, make_settings, start_app, database, table
):
    running = await start_app(make_settings())
    app = running.app
    async with TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts:
        p = await _matched(running, broker, topics)
        try:
            if table == "accounts":
                # The user's own toggle off: the account's decides. An alert is open.
                await _sql(
                    database,
                    "UPDATE users SET e911_recommendations = false, e911_location_id = 'home'",
                )
                await alerts.wait_count("e911.alert.raised", 1, within=WAIT)
            await _steady(app)
            kind = table[:-1]
            notices = sample(app, "e911_directory_notices_total", kind=kind)
            reevaluated = sample(app, "e911_reevaluations_total")
            # The write bumps the version, but its NOTIFY never comes.
            await _sql(
                database,
                f"ALTER TABLE {table} DISABLE TRIGGER {table}_notify_update",
                "UPDATE users SET e911_location_id = 'home'"
                if table == "users"
                else "UPDATE accounts SET e911_recommendations = false",
            )
            if table == "users":
                raised = (await alerts.wait_count("e911.alert.raised", 1, within=WAIT))[0].data
                assert raised["assigned_location"]["location_id"] == "home"
            else:
                resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0]
                assert resolved.data["reason"] == "recommendations_disabled"
            # Found by a scheduled check, not by a notice.
            assert sample(app, "e911_directory_notices_total", kind=kind) == notices
            assert sample(app, "e911_reevaluations_total") == reevaluated
        finally:
            await p.__aexit__(None, None, None)
    assert await running.stop() == 0


async def test_a_new_ip_through_ingest_is_decided_by_the_database(
    broker, topics, make_settings, start_app
):
    running = await start_app(make_settings())
    app = running.app
    async with TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts:
        p = await _matched(running, broker, topics)
        try:
            await _steady(app)
            await p.send(topics.session_events, ip_changed("acme", "u1", "s1", HOME_IP), "u1")
            raised = (await alerts.wait_count("e911.alert.raised", 1, within=WAIT))[0].data
            assert raised["ip"] == HOME_IP
            await _steady(app)
            assert sample(app, "e911_alerts_raised_total") == 1
        finally:
            await p.__aexit__(None, None, None)
    assert await running.stop() == 0


async def test_user_versions_move_only_when_a_check_input_changes(database):
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn)

        async def version(account: str = "acme") -> int:
            return int(
                await conn.fetchval(
                    "SELECT coalesce(max(version), 0) FROM user_versions WHERE account_id = $1",
                    account,
                )
            )

        await conn.execute("INSERT INTO accounts VALUES ('acme', false), ('other', false)")
        assert await version() == 1
        # Many users in one statement: one bump per account.
        await conn.execute(
            "INSERT INTO users (account_id, user_id, e911_location_id)"
            " SELECT 'acme', 'u' || i, 'hq' FROM generate_series(1, 50) i"
        )
        assert await version() == 2
        # A replayed upsert that changes nothing a check reads: no bump.
        await conn.execute("UPDATE users SET updated_at = now() WHERE account_id = 'acme'")
        await conn.execute("UPDATE accounts SET updated_at = now()")
        assert await version() == 2
        await conn.execute("UPDATE users SET e911_location_id = 'home' WHERE user_id = 'u7'")
        assert await version() == 3
        await conn.execute("UPDATE users SET e911_recommendations = true WHERE user_id = 'u8'")
        assert await version() == 4
        await conn.execute("UPDATE accounts SET e911_recommendations = true")
        assert await version() == 5
        assert await version("other") == 2
        await conn.execute("DELETE FROM users WHERE user_id = 'u9'")
        assert await version() == 6
        # A user moved to another account counts for both.
        await conn.execute("UPDATE users SET account_id = 'other' WHERE user_id = 'u10'")
        assert (await version(), await version("other")) == (7, 3)
        # Many changes in one transaction: one bump (a version tells committed states apart).
        async with conn.transaction():
            for user in ("u11", "u12", "u13"):
                await conn.execute(
                    "UPDATE users SET e911_location_id = 'lab' WHERE user_id = $1", user
                )
        assert await version() == 8
    finally:
        await conn.close()
