"""Alert lifecycle on the real broker and database (docs/spec.md#what-a-check-decides,
#alerts-topic).

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24
(given as a range), lab has no IP groups.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import asyncpg

from e911d.daemon.store.alerts import alert_id_for
from tests.support import (
    LINES,
    Producer,
    TopicWatcher,
    ce,
    directory,
    eventually,
    ip_changed,
    login,
    logout,
    now,
    sample,
    wait_consumed,
)

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
OTHER_HOME = "198.51.100.8"
ELSEWHERE = "192.0.2.77"


async def _setup(broker, topics, make_settings, start_app, checks=None, **dir_kwargs):
    running = await start_app(make_settings(checks=checks or {}))
    p = Producer(broker.bootstrap_servers)
    await p.__aenter__()
    w = TopicWatcher(broker.bootstrap_servers, topics.alerts)
    await w.__aenter__()
    await p.send_all(topics.directory_events, directory(**dir_kwargs), key="acme")
    return running, p, w


async def _teardown(running, p, w):
    await w.__aexit__(None, None, None)
    await p.__aexit__(None, None, None)
    assert await running.stop() == 0


async def test_mismatch_raised_at_login_plus_delay_and_logout_resolves(
    broker, topics, make_settings, start_app
):
    running, p, alerts = await _setup(broker, topics, make_settings, start_app)
    try:
        t0 = time.time()
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
        raised = await alerts.wait_count("e911.alert.raised", 1, within=15)
        elapsed = time.time() - t0
        assert 1.8 <= elapsed <= 6.0, elapsed  # initial delay is 2 s, tick 0.2 s
        msg = raised[0]
        event = msg.event
        assert event["specversion"] == "1.0"
        assert event["id"] == msg.data["alert_id"]
        assert msg.key == b"u1"
        assert msg.headers["content-type"] == b"application/cloudevents+json"
        assert msg.data["ip"] == HOME_IP
        assert msg.data["session_id"] == "s1"
        assert msg.data["account_id"] == "acme"
        # Each location with its dispatchable address on one line, as the directory
        # events gave it (building, floor and unit included).
        assert msg.data["assigned_location"] == {
            "location_id": "hq",
            "name": "Headquarters",
            "address_line": LINES["hq"],
        }
        assert msg.data["recommendation"] == {
            "kind": "ip_group_match",
            "locations": [
                {"location_id": "home", "name": "Home office", "address_line": LINES["home"]}
            ],
            "total": 1,
            "truncated": False,
        }
        assert msg.data["matched_by"] == "ip"
        assert event["subject"] == "s1"
        await p.send(topics.session_events, logout("acme", "u1", "s1"), key="u1")
        resolved = await alerts.wait_count("e911.alert.resolved", 1, within=10)
        data = resolved[0].data
        assert data["reason"] == "session_ended"
        assert data["alert_id"] == msg.data["alert_id"]
        assert (data["account_id"], data["user_id"], data["session_id"]) == ("acme", "u1", "s1")
        assert data["resolved_at"].endswith("Z")
        assert resolved[0].key == b"u1"
        assert resolved[0].event["subject"] == "s1"
        assert resolved[0].event["id"] not in (msg.data["alert_id"], "")  # its own, stable id
        assert sample(running.app, "e911_alerts_resolved_total", reason="session_ended") == 1
    finally:
        await _teardown(running, p, alerts)


async def test_match_raises_nothing_and_unchanged_mismatch_is_raised_once(
    broker, topics, make_settings, start_app
):
    running, p, alerts = await _setup(
        broker, topics, make_settings, start_app, users={"u1": (False, "hq"), "u2": (False, "hq")}
    )
    app = running.app
    try:
        await p.send(topics.session_events, login("acme", "u1", "s-match", HQ_IP), key="u1")
        await p.send(topics.session_events, login("acme", "u2", "s-miss", HOME_IP), key="u2")
        # Four checks of each session: initial + three intervals.
        await eventually(lambda: sample(app, "e911_checks_total", outcome="match") >= 4, 20)
        await eventually(lambda: sample(app, "e911_checks_total", outcome="mismatch") >= 4, 20)
        await alerts.wait_count("e911.alert.raised", 1, within=5)
        assert alerts.of_type("e911.alert.raised", "s-match") == []
        assert len(alerts.of_type("e911.alert.raised", "s-miss")) == 1
        assert sample(app, "e911_alerts_raised_total") == 1
    finally:
        await _teardown(running, p, alerts)


async def test_supersede_then_match_resolves(broker, topics, make_settings, start_app):
    running, p, alerts = await _setup(broker, topics, make_settings, start_app)
    try:
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
        first = (await alerts.wait_count("e911.alert.raised", 1))[0]
        # Not on any known network; hq has IP groups → all_locations, another fingerprint.
        await p.send(topics.session_events, ip_changed("acme", "u1", "s1", ELSEWHERE), key="u1")
        raised = await alerts.wait_count("e911.alert.raised", 2)
        resolved = await alerts.wait_count("e911.alert.resolved", 1)
        assert resolved[0].data["alert_id"] == first.data["alert_id"]
        assert resolved[0].data["reason"] == "superseded"
        second = raised[1]
        assert second.data["alert_id"] != first.data["alert_id"]
        assert second.data["recommendation"]["kind"] == "all_locations"
        assert second.data["matched_by"] is None
        assert [loc["location_id"] for loc in second.data["recommendation"]["locations"]] == [
            "hq",
            "home",
            "lab",
        ]  # ordered by name: Headquarters, Home office, Lab
        await p.send(topics.session_events, ip_changed("acme", "u1", "s1", HQ_IP), key="u1")
        resolved = await alerts.wait_count("e911.alert.resolved", 2)
        assert resolved[1].data["alert_id"] == second.data["alert_id"]
        assert resolved[1].data["reason"] == "location_matched"
    finally:
        await _teardown(running, p, alerts)


async def test_ip_change_does_not_move_the_schedule(broker, topics, make_settings, start_app):
    # The login is stamped 5 s ago and the IP change now, once the login is applied: the
    # first check stays due at login + 10 s. A schedule moved by the IP change (to its
    # time, or to when it was read) could not check before move + 10 s, 5 s later.
    delay, interval = 10.0, 120.0
    running, p, alerts = await _setup(
        broker,
        topics,
        make_settings,
        start_app,
        checks={"initial_delay_seconds": delay, "interval_seconds": interval},
    )
    app = running.app
    try:
        t_login = now() - dt.timedelta(seconds=5)
        await p.send(topics.session_events, login("acme", "u1", "s1", HQ_IP, t_login), key="u1")
        await eventually(lambda: "s1" in app.schedule)
        t_move = now()
        await p.send(topics.session_events, ip_changed("acme", "u1", "s1", HOME_IP, t_move), "u1")
        await wait_consumed(app, topics.session_events, "e911.session.ip_changed", 1)
        due = t_login.timestamp() + delay
        next_due = app.schedule.next_due()
        assert next_due is not None
        k = round((next_due - due) / interval)  # 0 unless the first check already ran
        assert k >= 0 and abs(next_due - (due + k * interval)) < 1e-3, (next_due, due)

        raised = await alerts.wait_count("e911.alert.raised", 1, within=20)
        assert raised[0].data["ip"] == HOME_IP  # the first check saw the move ...
        checked_at = dt.datetime.fromisoformat(raised[0].data["checked_at"])
        assert checked_at >= t_login + dt.timedelta(seconds=delay)  # ... at its due time,
        assert checked_at < t_move + dt.timedelta(seconds=delay)  # not one moved by it
    finally:
        await _teardown(running, p, alerts)


async def test_undetermined_and_unknown_user_raise_nothing(
    broker, topics, make_settings, start_app
):
    running, p, alerts = await _setup(
        broker, topics, make_settings, start_app, users={"u-lab": (False, "lab")}
    )
    app = running.app
    try:
        await p.send(topics.session_events, login("acme", "u-lab", "s1", ELSEWHERE), key="u-lab")
        await p.send(topics.session_events, login("acme", "ghost", "s2", HOME_IP), key="ghost")
        await p.send(topics.session_events, login("nope", "u1", "s3", HOME_IP), key="u1")
        await eventually(lambda: sample(app, "e911_checks_total", outcome="undetermined") >= 2)
        await eventually(lambda: sample(app, "e911_checks_total", outcome="unknown_user") >= 4)
        assert sample(app, "e911_alerts_raised_total") == 0
        assert alerts.messages == []
    finally:
        await _teardown(running, p, alerts)


async def test_account_toggle_overrides_user_and_disabling_resolves(
    broker, topics, make_settings, start_app
):
    # Account on, user's own toggle off: enabled.
    running, p, alerts = await _setup(
        broker, topics, make_settings, start_app, account_on=True, users={"u1": (False, "hq")}
    )
    app = running.app
    try:
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
        first = (await alerts.wait_count("e911.alert.raised", 1))[0]
        # Account toggle off gives the user their own (off) setting back.
        await p.send(
            topics.directory_events,
            ce("e911.account.upserted", {"account_id": "acme", "e911_recommendations": False}),
            key="acme",
        )
        resolved = await alerts.wait_count("e911.alert.resolved", 1)
        assert resolved[0].data["reason"] == "recommendations_disabled"
        assert resolved[0].data["alert_id"] == first.data["alert_id"]
        await eventually(lambda: sample(app, "e911_checks_total", outcome="disabled") >= 2)
        # The user's own toggle on: enabled again, a new episode of the same mismatch.
        await p.send(
            topics.directory_events,
            ce(
                "e911.user.upserted",
                {
                    "account_id": "acme",
                    "user_id": "u1",
                    "e911_recommendations": True,
                    "e911_location_id": "hq",
                },
            ),
            key="acme",
        )
        raised = await alerts.wait_count("e911.alert.raised", 2)
        assert raised[1].data["alert_id"] != first.data["alert_id"]
    finally:
        await _teardown(running, p, alerts)


async def test_no_assigned_location(broker, topics, make_settings, start_app):
    running, p, alerts = await _setup(
        broker, topics, make_settings, start_app, users={"u1": (True, None), "u2": (True, None)}
    )
    try:
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
        await p.send(topics.session_events, login("acme", "u2", "s2", ELSEWHERE), key="u2")
        await alerts.wait_count("e911.alert.raised", 2)
        a1 = alerts.of_type("e911.alert.raised", "s1")[0].data
        a2 = alerts.of_type("e911.alert.raised", "s2")[0].data
        assert a1["assigned_location"] is None
        assert a1["recommendation"]["kind"] == "ip_group_match"
        assert [x["location_id"] for x in a1["recommendation"]["locations"]] == ["home"]
        assert a2["recommendation"]["kind"] == "all_locations"
        assert len(a2["recommendation"]["locations"]) == 3
    finally:
        await _teardown(running, p, alerts)


async def test_session_ttl_expiry_resolves(broker, topics, make_settings, start_app, database):
    running = await start_app(make_settings(checks={"session_ttl_seconds": 4.0}))
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), key="acme")
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
        await alerts.wait_count("e911.alert.raised", 1)
        resolved = await alerts.wait_count("e911.alert.resolved", 1, within=10)
        assert resolved[0].data["reason"] == "session_ended"
        conn = await asyncpg.connect(database)
        try:
            ended = await conn.fetchval("SELECT ended_at FROM sessions WHERE session_id = 's1'")
        finally:
            await conn.close()
        assert ended is not None
        assert "s1" not in running.app.schedule
    assert await running.stop() == 0


async def test_session_ttl_counts_from_the_last_event_not_from_login(
    broker, topics, make_settings, start_app, database
):
    """Two sessions log in at the same moment; only one has an event since. The sweep
    that expires the idle one finds both logins older than the TTL, so it would expire
    the busy one too if the TTL counted from login: the busy one lives until TTL after
    its last event."""
    ttl = 10.0
    running = await start_app(
        make_settings(checks={"session_ttl_seconds": ttl, "sweep_interval_seconds": 0.5})
    )
    app = running.app
    ttl_delta = dt.timedelta(seconds=ttl)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        users = {"busy": (False, "hq"), "idle": (False, "hq")}
        await p.send_all(topics.directory_events, directory(users=users), key="acme")
        logged_in = now() - dt.timedelta(seconds=3)
        for u in users:
            await p.send(topics.session_events, login("acme", u, f"s-{u}", HOME_IP, logged_in), u)
        moved = now()
        await p.send(
            topics.session_events, ip_changed("acme", "busy", "s-busy", OTHER_HOME, moved), "busy"
        )
        await wait_consumed(app, topics.session_events, "e911.session.ip_changed", 1)
        assert "s-busy" in app.schedule  # the move was applied well inside the TTL
        await alerts.wait_count("e911.alert.raised", 2)  # both open, both mismatching

        idle = (await alerts.wait_count("e911.alert.resolved", 1, "s-idle", within=30))[0].data
        assert idle["reason"] == "session_ended"
        assert dt.datetime.fromisoformat(idle["resolved_at"]) >= logged_in + ttl_delta
        # The same sweep left the busy session alone, though its login is as old.
        conn = await asyncpg.connect(database)
        try:
            busy = await conn.fetchrow(
                "SELECT logged_in_at, last_event_at, ended_at, now() - logged_in_at > $1 AS old"
                " FROM sessions WHERE session_id = 's-busy'",
                ttl_delta,
            )
        finally:
            await conn.close()
        assert busy["ended_at"] is None
        assert busy["old"], busy  # logged in more than the TTL ago
        assert busy["logged_in_at"] == logged_in
        assert busy["last_event_at"] == moved
        assert "s-busy" in app.schedule
        assert alerts.of_type("e911.alert.resolved", "s-busy") == []

        # It expires in turn, TTL after its last event.
        busy_end = (await alerts.wait_count("e911.alert.resolved", 1, "s-busy", within=30))[0]
        assert busy_end.data["reason"] == "session_ended"
        assert dt.datetime.fromisoformat(busy_end.data["resolved_at"]) >= moved + ttl_delta
        assert "s-busy" not in app.schedule
    assert await running.stop() == 0


async def test_alert_ids_are_the_same_on_two_independent_deployments(
    broker, topics, database, other_database, make_settings, start_app
):  # the databases first: torn down after the apps
    """Two deployments (each its own consumer group and database) read the same events:
    each alert of the same session, login time, episode and fingerprint gets the same
    id, and it is the id alert_id_for gives for the stored row (docs/spec.md#alerts-topic)."""
    first = await start_app(make_settings())
    second = await start_app(
        make_settings(
            kafka={"group_id": f"other-{uuid.uuid4().hex[:8]}"}, postgres={"dsn": other_database}
        )
    )
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), key="acme")
        logged_in = now() - dt.timedelta(seconds=3)  # its first check is due at once
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP, logged_in), "u1")
        raised = await alerts.wait_count("e911.alert.raised", 2)  # one from each
        episode_1 = {m.event["id"] for m in raised}
        assert len(episode_1) == 1
        assert {m.data["alert_id"] for m in raised} == episode_1

        # A new episode of the same mismatch (disabled, then enabled): again one id.
        toggle = "e911.account.upserted"
        await p.send(
            topics.directory_events,
            ce(toggle, {"account_id": "acme", "e911_recommendations": False}),
            key="acme",
        )
        resolved = await alerts.wait_count("e911.alert.resolved", 2)
        assert {m.data["alert_id"] for m in resolved} == episode_1
        assert len({m.event["id"] for m in resolved}) == 1  # the resolution's id, too
        await p.send(
            topics.directory_events,
            ce(toggle, {"account_id": "acme", "e911_recommendations": True}),
            key="acme",
        )
        raised = await alerts.wait_count("e911.alert.raised", 4)
        episode_2 = {m.event["id"] for m in raised[2:]}
        assert len(episode_2) == 1
        assert episode_2 != episode_1

    for dsn in (database, other_database):
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT a.alert_id, a.episode, a.fingerprint, s.logged_in_at FROM alerts a"
                " JOIN sessions s USING (session_id) ORDER BY a.episode"
            )
        finally:
            await conn.close()
        assert [r["episode"] for r in rows] == [1, 2]
        assert [r["alert_id"] for r in rows] == [*episode_1, *episode_2]
        for r in rows:
            assert r["logged_in_at"] == logged_in
            assert r["alert_id"] == alert_id_for("s1", logged_in, r["episode"], r["fingerprint"])
    assert await first.stop() == 0
    assert await second.stop() == 0


async def test_directory_written_by_plain_sql_is_used_at_the_next_check(
    broker, topics, make_settings, start_app, database
):
    """Another system writes the tables directly: the cached snapshot is refreshed
    (directory version bumped by triggers) and the next check uses the new data."""
    running, p, alerts = await _setup(broker, topics, make_settings, start_app)
    try:
        await p.send(topics.session_events, login("acme", "u1", "s1", ELSEWHERE), key="u1")
        first = (await alerts.wait_count("e911.alert.raised", 1))[0].data
        assert first["recommendation"]["kind"] == "all_locations"
        conn = await asyncpg.connect(database)
        try:
            # HQ's network now also covers the user's address.
            await conn.execute(
                "INSERT INTO ip_group_networks (account_id, ip_group_id, network) "
                "VALUES ('acme', 'hq-net', '192.0.2.0/24')"
            )
        finally:
            await conn.close()
        resolved = await alerts.wait_count("e911.alert.resolved", 1)
        assert resolved[0].data["alert_id"] == first["alert_id"]
        assert resolved[0].data["reason"] == "location_matched"
    finally:
        await _teardown(running, p, alerts)
