"""User actions and directory changes take effect at once, on every instance
(docs/spec.md#what-a-check-decides).

The scheduled interval here is long (120 s), so anything resolved or raised after the
first check can only come from the immediate re-evaluation that a PostgreSQL NOTIFY
triggers: nothing waits for the next tick. "At once" is therefore asserted with a
bound (REACT_BOUND) that only a real defect exceeds on a loaded machine, far below the
interval; the latency itself is measured by benchmarks/reaction.py.

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24,
lab has no IP groups.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time

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
)

HOME_IP = "198.51.100.7"
LONG = {"initial_delay_seconds": 1.0, "interval_seconds": 120.0}
REACT_BOUND = 10.0  # seconds: "at once", against a next scheduled check 120 s away
WAIT = 30.0  # how long a test waits for an event before it gives up


def location_changed(user: str, location: str | None) -> bytes:
    return ce(
        "e911.user.location_changed",
        {
            "account_id": "acme",
            "user_id": user,
            "e911_location_id": location,
            "changed_via": "app",
        },
    )


@contextlib.asynccontextmanager
async def _open_alerts(broker, topics, users=None, **directory_kwargs):
    """Every user (default: u1, own toggle off, assigned hq) logged in at home: one
    alert open per user when this yields (producer, alert watcher, raised alerts)."""
    users = users or {"u1": (False, "hq")}
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(
            topics.directory_events, directory(users=users, **directory_kwargs), "acme"
        )
        for u in users:
            await p.send(topics.session_events, login("acme", u, f"s-{u}", HOME_IP), u)
        raised = await alerts.wait_count("e911.alert.raised", len(users), within=20)
        yield p, alerts, [m.data for m in raised]


async def _two_instances(make_settings, start_app):
    settings = make_settings(checks=LONG)
    a = await start_app(settings)
    b = await start_app(settings, wait_ready=False)

    def split() -> bool:
        pa, pb = a.app.ownership.partitions, b.app.ownership.partitions
        return bool(
            a.app.ownership.loaded
            and b.app.ownership.loaded
            and pa
            and pb
            and not pa & pb
            and pa | pb == {0, 1, 2, 3}
        )

    await eventually(split, within=30)
    return a, b


async def _sql(database: str, statement: str, *args: object) -> float:
    """Run one statement from another connection (another process's writer)."""
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(statement, *args)
        return time.perf_counter()
    finally:
        await conn.close()


async def test_location_change_resolves_at_once_without_moving_the_schedule(
    broker, topics, make_settings, start_app
):
    running = await start_app(make_settings(checks=LONG))
    app = running.app
    async with _open_alerts(broker, topics) as (p, alerts, [first]):
        assert first["assigned_location"]["location_id"] == "hq"
        due = app.schedule.next_due()

        # The user picks the recommended location in the app: resolved at once.
        started = time.perf_counter()
        await p.send(topics.directory_events, location_changed("u1", "home"), key="acme")
        resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0]
        elapsed = time.perf_counter() - started
        assert resolved.data["alert_id"] == first["alert_id"]
        assert resolved.data["reason"] == "location_updated"
        assert resolved.key == b"u1"
        assert elapsed < REACT_BOUND, elapsed  # produced → resolved event received
        assert app.schedule.next_due() == due  # the schedule did not move
        assert sample(app, "e911_reevaluations_total") >= 1

        # A new location that still mismatches raises at once ...
        await p.send(topics.directory_events, location_changed("u1", "lab"), key="acme")
        raised = await alerts.wait_count("e911.alert.raised", 2, within=WAIT)
        assert raised[1].data["assigned_location"]["location_id"] == "lab"
        assert [loc["location_id"] for loc in raised[1].data["recommendation"]["locations"]] == [
            "home"
        ]
        # ... and a change to another mismatching location supersedes it.
        await p.send(topics.directory_events, location_changed("u1", "hq"), key="acme")
        resolved = await alerts.wait_count("e911.alert.resolved", 2, within=WAIT)
        assert resolved[1].data["reason"] == "superseded"
        assert resolved[1].data["alert_id"] == raised[1].data["alert_id"]
        third = (await alerts.wait_count("e911.alert.raised", 3, within=WAIT))[2].data
        assert third["assigned_location"]["location_id"] == "hq"
        assert app.schedule.next_due() == due
        # Only the first check was a scheduled one.
        assert sample(app, "e911_check_lateness_seconds_count") == 1
    assert await running.stop() == 0


async def test_account_toggle_written_by_sql_applies_at_once_on_every_instance(
    broker, topics, make_settings, start_app, database
):
    a, b = await _two_instances(make_settings, start_app)
    users = {f"user{i}": (i % 2 == 0, "hq") for i in range(12)}  # even users: own toggle on
    async with _open_alerts(broker, topics, users) as (_p, alerts, raised):
        assert a.app.sessions_scheduled() > 0 and b.app.sessions_scheduled() > 0
        raised_ids = {r["session_id"]: r["alert_id"] for r in raised}

        # The admin turns the account toggle off in the console (a plain SQL write).
        committed = await _sql(
            database, "UPDATE accounts SET e911_recommendations = false WHERE account_id = 'acme'"
        )
        off = sorted(u for u, (own, _) in users.items() if not own)
        resolved = await alerts.wait_count("e911.alert.resolved", len(off), within=WAIT)
        elapsed = time.perf_counter() - committed
        assert sorted(m.data["user_id"] for m in resolved) == off
        assert {m.data["reason"] for m in resolved} == {"recommendations_disabled"}
        assert all(m.data["alert_id"] == raised_ids[m.data["session_id"]] for m in resolved)
        assert elapsed < REACT_BOUND, elapsed
        for inst in (a, b):  # both instances heard it and re-evaluated their sessions
            assert sample(inst.app, "e911_directory_notices_total", kind="account") >= 1
            assert sample(inst.app, "e911_reevaluations_total") >= 1

        # Back on: the users whose own toggle is off are raised again at once.
        await _sql(
            database, "UPDATE accounts SET e911_recommendations = true WHERE account_id = 'acme'"
        )
        raised = await alerts.wait_count("e911.alert.raised", len(users) + len(off), within=WAIT)
        again = sorted(m.data["user_id"] for m in raised[len(users) :])
        assert again == off
        assert len(alerts.of_type("e911.alert.resolved")) == len(off)
    assert await a.stop() == 0
    assert await b.stop() == 0


async def test_ip_group_change_by_sql_reaches_every_instance_at_once(
    broker, topics, make_settings, start_app, database
):
    a, b = await _two_instances(make_settings, start_app)
    users = {f"user{i}": (False, "hq") for i in range(12)}
    async with _open_alerts(broker, topics, users) as (_p, alerts, _):
        notices = [sample(i.app, "e911_directory_notices_total", kind="directory") for i in (a, b)]
        # Both instances have the account's snapshot cached from the first checks.
        assert "acme" in a.app.cache and "acme" in b.app.cache

        # Another system re-ties the home network to HQ: every user now matches.
        committed = await _sql(
            database, "UPDATE ip_groups SET location_id = 'hq' WHERE ip_group_id = 'home-net'"
        )

        async def heard_by_both() -> bool:
            return all(
                sample(i.app, "e911_directory_notices_total", kind="directory") > n
                for i, n in zip((a, b), notices, strict=True)
            )

        await eventually(heard_by_both, within=WAIT, step=0.005)
        heard = time.perf_counter() - committed
        resolved = await alerts.wait_count("e911.alert.resolved", len(users), within=WAIT)
        elapsed = time.perf_counter() - committed
        assert {m.data["reason"] for m in resolved} == {"location_matched"}
        assert heard < REACT_BOUND, heard
        assert elapsed < REACT_BOUND, elapsed
    assert await a.stop() == 0
    assert await b.stop() == 0


async def test_listener_reconnects_after_its_connection_is_killed(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings(checks={**LONG, "listener_keepalive_seconds": 0.5}))
    app = running.app
    assert app.listener is not None
    async with _open_alerts(broker, topics) as (_p, alerts, _):
        pid = app.listener.backend_pid
        assert pid is not None
        await _sql(database, "SELECT pg_terminate_backend($1)", pid)
        await eventually(
            lambda: (
                app.listener.backend_pid not in (None, pid)
                and sample(app, "e911_directory_listener_up") == 1
            ),
            within=10,
        )
        await _sql(database, "UPDATE users SET e911_location_id = 'home' WHERE user_id = 'u1'")
        resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0]
        assert resolved.data["reason"] == "location_updated"
    assert await running.stop() == 0


async def test_user_toggle_applies_at_once_both_ways(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings(checks=LONG))
    app = running.app
    # The account toggle is off, so each user's own toggle decides.
    users = {"u1": (True, "hq")}
    async with _open_alerts(broker, topics, users, account_on=False) as (p, alerts, [first]):
        started = time.perf_counter()
        await p.send(
            topics.directory_events,
            ce(
                "e911.user.upserted",
                {
                    "account_id": "acme",
                    "user_id": "u1",
                    "e911_recommendations": False,
                    "e911_location_id": "hq",
                },
            ),
            key="acme",
        )
        resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0].data
        assert time.perf_counter() - started < REACT_BOUND
        assert resolved["alert_id"] == first["alert_id"]
        assert resolved["reason"] == "recommendations_disabled"

        # Turned back on by SQL: the mismatch is raised again at once, as a new alert.
        await _sql(database, "UPDATE users SET e911_recommendations = true")
        again = (await alerts.wait_count("e911.alert.raised", 2, within=WAIT))[1].data
        assert again["alert_id"] != first["alert_id"]
        assert sample(app, "e911_check_lateness_seconds_count") == 1  # one scheduled check
    assert await running.stop() == 0


async def test_truncating_a_directory_table_reevaluates_every_owned_session(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings(checks=LONG))
    app = running.app
    async with _open_alerts(broker, topics) as (_p, alerts, _):
        assert "acme" in app.cache
        # No network is left: the assigned location cannot be told apart any more.
        # Nothing says the user moved either: undetermined, not matched
        # (docs/spec.md#what-a-check-decides).
        await _sql(database, "TRUNCATE ip_group_networks")
        resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0].data
        assert resolved["reason"] == "location_undetermined"
        assert sample(app, "e911_directory_notices_total", kind="all") == 1
    assert await running.stop() == 0


FIRST_CHECK = 60.0  # the initial delay: far beyond how long the test below looks


@pytest.mark.parametrize("via", ["event", "sql"])
async def test_sessions_before_their_first_check_are_left_out_of_reevaluation(
    broker, topics, make_settings, start_app, database, via
):
    """A change that raises at once for a session past its first check raises nothing
    for one that logged in less than the initial delay ago: it is left to its first
    check (docs/spec.md#what-a-check-decides: no alert earlier than initial_delay).

    Both users are at home and assigned home (a match); then both are assigned HQ.
    """
    settings = make_settings(
        checks={
            "initial_delay_seconds": FIRST_CHECK,
            "interval_seconds": 600.0,
            "reevaluate_debounce_seconds": 0.05,
        }
    )
    running = await start_app(settings)
    app = running.app
    users = {"control": (False, "home"), "fresh": (False, "home")}
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(users=users), "acme")
        # The control logged in long enough ago that its first check is overdue (it runs
        # at once, a match); its next one is 600 s later.
        control_at = now() - dt.timedelta(seconds=FIRST_CHECK + 40)
        await p.send(
            topics.session_events,
            login("acme", "control", "s-control", HOME_IP, control_at),
            "control",
        )
        fresh_at = now()
        await p.send(
            topics.session_events, login("acme", "fresh", "s-fresh", HOME_IP, fresh_at), "fresh"
        )
        await eventually(lambda: "s-control" in app.schedule and "s-fresh" in app.schedule)
        await eventually(lambda: sample(app, "e911_checks_total", outcome="match") >= 1)

        started = time.perf_counter()
        if via == "event":
            # The fresh user's change first: it is heard no later than the control's.
            for user in ("fresh", "control"):
                await p.send(topics.directory_events, location_changed(user, "hq"), key="acme")
        else:
            await _sql(database, "UPDATE users SET e911_location_id = 'hq'")
        raised = await alerts.wait_count("e911.alert.raised", 1, within=WAIT)
        elapsed = time.perf_counter() - started
        assert [m.data["session_id"] for m in raised] == ["s-control"]
        assert raised[0].data["assigned_location"]["location_id"] == "hq"
        assert elapsed < REACT_BOUND, elapsed  # the control: at once

        # The fresh session was left alone: no alert decided, none published, and its
        # first check still due at login + initial delay ...
        conn = await asyncpg.connect(database)
        try:
            fresh_alerts = await conn.fetchval(
                "SELECT count(*) FROM alerts WHERE session_id = 's-fresh'"
            )
        finally:
            await conn.close()
        assert fresh_alerts == 0
        assert alerts.of_type("e911.alert.raised", "s-fresh") == []
        assert "s-fresh" in app.schedule
        due = fresh_at.timestamp() + FIRST_CHECK
        assert app.schedule.next_due() == pytest.approx(due, abs=1e-3)
        # ... which it still is: all of the above was seen before that check could run.
        assert time.time() < due
    assert await running.stop() == 0
