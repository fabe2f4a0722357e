"""The alert history and the sessions-checked record on the real broker and database
(docs/spec.md#administrator-insight): what a raised alert's row keeps, how long resolved alerts and
checked sessions are kept, and that a session is written once per UTC day from either
check path (memory or PostgreSQL).

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24; the
home group's BSSID is written with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import asyncpg
import pytest

from tests.support import (
    Producer,
    TopicWatcher,
    ce,
    directory,
    eventually,
    login,
    now,
    sample,
    wait_consumed,
)

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
ELSEWHERE = "192.0.2.77"
HOME_AP = "f0:6e:0b:c2:03:22"
WAIT = 30.0
RAISED = "e911.alert.raised"
RESOLVED = "e911.alert.resolved"


async def _rows(database: str, query: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database)
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def _checked(database: str) -> dict[str, dict[str, Any]]:
    rows = await _rows(database, "SELECT * FROM checked_sessions")
    return {r["session_id"]: r for r in rows}


def _login(account: str, user: str, session: str, ip: str, **network: Any) -> bytes:
    data: dict[str, Any] = {"account_id": account, "user_id": user, "session_id": session}
    data["ip"] = ip
    if network:
        data["network"] = network
    # Logged in a while ago: checked at once.
    return ce("e911.session.login", data, now() - dt.timedelta(seconds=30))


async def test_a_raised_alert_keeps_its_deciding_signal_groups_and_recommendation_kind(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings())
    app = running.app
    users = {"u1": (False, "hq"), "u2": (False, "hq"), "u3": (False, "hq")}
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(users=users), key="acme")
        await wait_consumed(app, topics.directory_events, "e911.user.upserted", 3)
        conn = await asyncpg.connect(database)
        try:
            await conn.execute(
                "UPDATE ip_groups SET bssids = '{f06e0bc20322}' WHERE ip_group_id = 'home-net'"
            )
        finally:
            await conn.close()
        # At home by IP; on hq's subnet but on home's access point; nowhere known.
        await p.send(topics.session_events, _login("acme", "u1", "s-ip", HOME_IP), key="u1")
        await p.send(
            topics.session_events,
            _login("acme", "u2", "s-bssid", HQ_IP, bssid=HOME_AP),
            key="u2",
        )
        await p.send(topics.session_events, _login("acme", "u3", "s-all", ELSEWHERE), key="u3")
        raised = {
            m.data["session_id"]: m.data for m in await alerts.wait_count(RAISED, 3, within=WAIT)
        }
    rows = await _rows(
        database,
        "SELECT alert_id, session_id, account_id, user_id, matched_by, ip_group_ids, "
        "recommendation_kind, raised_at, resolved_at, reason FROM alerts",
    )
    stored = {r["session_id"]: r for r in rows}
    assert set(stored) == {"s-ip", "s-bssid", "s-all"}
    for sid, row in stored.items():
        assert row["alert_id"] == raised[sid]["alert_id"]
        assert row["account_id"] == "acme"
        assert row["raised_at"] is not None
        assert row["resolved_at"] is None
        assert row["reason"] is None
        assert row["matched_by"] == raised[sid]["matched_by"]
        assert row["recommendation_kind"] == raised[sid]["recommendation"]["kind"]
    decided = {
        sid: (r["matched_by"], r["ip_group_ids"], r["recommendation_kind"])
        for sid, r in stored.items()
    }
    assert decided == {
        "s-ip": ("ip", ["home-net"], "ip_group_match"),
        "s-bssid": ("bssid", ["home-net"], "ip_group_match"),
        "s-all": (None, [], "all_locations"),
    }
    assert await running.stop() == 0


async def test_resolved_alerts_and_checked_sessions_are_kept_for_the_retention_then_purged(
    broker, topics, make_settings, start_app, database
):
    retention = 5.0
    checks = {
        "alert_retention_seconds": retention,
        "session_ttl_seconds": retention,  # the sweep keeps max(retention, ttl)
        "dismiss_snooze_seconds": 0.0,
    }
    running = await start_app(make_settings(checks=checks))
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), key="acme")
        # No event after the login: the session expires after the TTL (session_ended).
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
        first = (await alerts.wait_count(RAISED, 1, within=WAIT))[0].data
        resolved = (await alerts.wait_count(RESOLVED, 1, within=WAIT))[0].data
    assert resolved["reason"] == "session_ended"
    query = "SELECT raised_at, resolved_at, reason FROM alerts WHERE alert_id = $1"
    [kept] = await _rows(database, query, first["alert_id"])
    assert kept["reason"] == "session_ended"
    assert kept["raised_at"] < kept["resolved_at"]
    [checked] = (await _checked(database)).values()
    assert checked["session_id"] == "s1"
    assert checked["account_id"] == "acme"

    async def purged() -> bool:
        return not await _rows(database, query, first["alert_id"])

    await eventually(purged, within=WAIT)
    # Purged after the retention, not before it.
    assert time.time() - kept["resolved_at"].timestamp() >= retention

    async def checked_purged() -> bool:
        return not await _checked(database)

    await eventually(checked_purged, within=WAIT)
    assert time.time() - checked["last_checked_at"].timestamp() >= retention
    # The expiry observed how long the alert was open.
    assert sample(app, "e911_alert_open_duration_seconds_count", reason="session_ended") == 1
    assert await running.stop() == 0


@pytest.mark.parametrize("decide_in_memory", [True, False])
async def test_each_checked_session_is_recorded_once_a_day_with_its_account(
    broker, topics, make_settings, start_app, database, decide_in_memory
):
    running = await start_app(make_settings(checks={"decide_in_memory": decide_in_memory}))
    app = running.app
    async with Producer(broker.bootstrap_servers) as p:
        await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
        await p.send_all(topics.directory_events, directory("beta"), key="beta")
        await wait_consumed(app, topics.directory_events, "e911.user.upserted", 2)
        await p.send(topics.session_events, _login("acme", "u1", "s-acme", HQ_IP), key="u1")
        await p.send(topics.session_events, _login("beta", "u1", "s-beta", HOME_IP), key="u1")

        async def both() -> bool:
            return len(await _checked(database)) == 2

        await eventually(both, within=WAIT)
        first = await _checked(database)
        assert {sid: r["account_id"] for sid, r in first.items()} == {
            "s-acme": "acme",
            "s-beta": "beta",
        }
        for r in first.values():
            assert r["first_checked_at"] == r["last_checked_at"]
        # Several more checks of each session (from memory when on): no rewrite today.
        total = sample(app, "e911_checks_total", outcome="match")
        await eventually(
            lambda: sample(app, "e911_checks_total", outcome="match") >= total + 3, within=WAIT
        )
        if decide_in_memory:
            assert sample(app, "e911_checks_decided_in_memory_total") >= 3
        assert await _checked(database) == first
    assert await running.stop() == 0


async def test_a_failed_write_is_retried_by_the_next_check_from_memory(
    broker, topics, make_settings, start_app, database
):
    """The record is not on the alert path: a write that fails leaves the session
    unrecorded, the tick goes on, and a check after the pause (here decided from
    memory) writes it."""
    running = await start_app(make_settings())
    app = running.app
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "ALTER TABLE checked_sessions ADD CONSTRAINT held_back CHECK (session_id <> 's1')"
        )

        def failures() -> float:
            return sample(app, "e911_database_errors_total", operation="checked_sessions")

        def in_memory() -> float:
            return sample(app, "e911_checks_decided_in_memory_total")

        def asked() -> float:
            return sample(app, "e911_checks_total", outcome="match") - in_memory()

        async with Producer(broker.bootstrap_servers) as p:
            await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
            await p.send(topics.session_events, _login("acme", "u1", "s1", HQ_IP), key="u1")
            # The database check's write fails, then a check from memory tries again.
            await eventually(lambda: in_memory() >= 1 and failures() >= 1, within=WAIT)
            # Decided from memory from now on: the next failures are that path's.
            from_db, failed = asked(), failures()
            # (after the pause that follows a failure: one interval here;
            # daemon/core/checked_today.py)
            await eventually(lambda: failures() >= failed + 1, within=WAIT)
            assert asked() == from_db
            assert await _checked(database) == {}
            await conn.execute("ALTER TABLE checked_sessions DROP CONSTRAINT held_back")

            async def recorded() -> bool:
                return bool(await _checked(database))

            await eventually(recorded, within=WAIT)
            written = await _checked(database)
            assert written["s1"]["account_id"] == "acme"
            assert asked() == from_db  # written by a check decided from memory
            settled = failures()
            start = in_memory()
            await eventually(lambda: in_memory() >= start + 3, within=WAIT)
            assert await _checked(database) == written
            assert failures() == settled
    finally:
        await conn.close()
    assert await running.stop() == 0
