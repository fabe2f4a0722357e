"""Restarts, handovers and crashes lose nothing and raise nothing twice
(docs/spec.md#scale-and-durability)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import asyncpg

from tests.support import Producer, TopicWatcher, directory, eventually, login, sample

HOME_IP = "198.51.100.7"


async def test_restart_resumes_schedules_without_raising_twice(
    broker, topics, make_settings, start_app
):
    settings = make_settings()
    first = await start_app(settings)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), "u1")
        await alerts.wait_count("e911.alert.raised", 1)
        assert await first.stop() == 0

        second = await start_app(settings)
        assert "s1" in second.app.schedule  # loaded from PostgreSQL, not from Kafka
        await eventually(lambda: sample(second.app, "e911_checks_total", outcome="mismatch") >= 3)
        assert len(alerts.of_type("e911.alert.raised")) == 1
        assert alerts.of_type("e911.alert.resolved") == []
        assert (
            sample(
                second.app,
                "e911_events_total",
                topic=topics.session_events,
                type="e911.session.login",
            )
            == 0
        )  # offsets came from the database
        assert await second.stop() == 0


async def test_overdue_session_is_checked_once_then_on_cadence(
    broker, topics, make_settings, start_app
):
    """Logged in 60 s ago (40 intervals missed): one check at once, then the cadence."""
    settings = make_settings()
    running = await start_app(settings)
    app = running.app
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        t0 = time.time()
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP, long_ago), "u1")
        await alerts.wait_count("e911.alert.raised", 1)
        assert time.time() - t0 < 3.0  # at once: login + initial delay is long past
        # Scheduled checks only (a directory notice may add an immediate re-evaluation).
        scheduled = "e911_check_lateness_seconds_count"
        await eventually(lambda: sample(app, scheduled) >= 1)
        assert sample(app, scheduled) == 1  # no burst
        await eventually(lambda: sample(app, scheduled) >= 3)
        elapsed = time.time() - t0
        assert elapsed >= 1.4  # the 2nd check waits for the next slot of the cadence,
        # the 3rd a whole interval (1.5 s) after it: no catching up on missed ticks
    assert await running.stop() == 0


async def test_alert_decided_but_not_published_survives_a_stop(
    broker, topics, make_settings, start_app, database
):
    """The outbox: an alert decided while the broker path is blocked is published by the
    next instance, once."""
    settings = make_settings(shutdown_timeout_seconds=3.0)
    first = await start_app(settings)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        async with first.app.services.relay.paused():  # the relay cannot publish from here on
            await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), "u1")
            await eventually(lambda: sample(first.app, "e911_alerts_raised_total") == 1)
            conn = await asyncpg.connect(database)
            try:
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
                assert await conn.fetchval("SELECT count(*) FROM alerts") == 1
            finally:
                await conn.close()
            await first.app.services.housekeeping.update_gauges()
            assert sample(first.app, "e911_outbox_pending") == 1
            first.app.request_stop()
            await asyncio.wait_for(asyncio.shield(first.task), 10)
        assert alerts.of_type("e911.alert.raised") == []

        second = await start_app(settings)
        raised = await alerts.wait_count("e911.alert.raised", 1)
        await eventually(lambda: sample(second.app, "e911_checks_total", outcome="mismatch") >= 2)
        assert len(alerts.of_type("e911.alert.raised")) == 1
        conn = await asyncpg.connect(database)
        try:
            alert_id = await conn.fetchval("SELECT alert_id FROM alerts")
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        finally:
            await conn.close()
        assert raised[0].data["alert_id"] == alert_id
        assert await second.stop() == 0


async def test_alerts_decided_before_a_stop_are_published_by_the_stop(
    broker, topics, make_settings, start_app, database
):
    """The final flush: the relay loop is held until the stop is requested, after which
    only the drain's flush may publish; without it the alert would wait in the outbox
    for the next instance."""
    settings = make_settings(shutdown_timeout_seconds=5.0)
    running = await start_app(settings)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        async with running.app.services.relay.paused():
            await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), "u1")
            await eventually(lambda: sample(running.app, "e911_alerts_raised_total") == 1)
            running.app.request_stop()
        assert await asyncio.wait_for(running.task, 15) == 0
        conn = await asyncpg.connect(database)
        try:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
            alert_id = await conn.fetchval("SELECT alert_id FROM alerts")
        finally:
            await conn.close()
        raised = await alerts.wait_count("e911.alert.raised", 1)
        assert raised[0].data["alert_id"] == alert_id


# A consumer that stops without leaving the group keeps its partitions until the broker
# times its session out; one that leaves starts a rebalance at once, which the others
# hear at their next heartbeat (1 s). The embedded broker then holds the join open for
# half the session timeout (5 s here, whatever the rebalance timeout), so the handover
# completes ~6 s after a leave, and no sooner than 10 + 5 s without one.
SESSION_TIMEOUT = 10.0
LONG_SESSION = {"session_timeout_ms": int(SESSION_TIMEOUT * 1000), "heartbeat_interval_ms": 1_000}


async def test_two_instances_split_partitions_and_hand_over(
    broker, topics, make_settings, start_app
):
    settings = make_settings(kafka=LONG_SESSION)
    a = await start_app(settings)
    b = await start_app(settings, wait_ready=False)
    await eventually(
        lambda: (
            a.app.ownership.loaded
            and b.app.ownership.loaded
            and a.app.ownership.partitions
            and b.app.ownership.partitions
            and not (a.app.ownership.partitions & b.app.ownership.partitions)
            and (a.app.ownership.partitions | b.app.ownership.partitions) == {0, 1, 2, 3}
        ),
        within=30,
    )
    users = [f"user{i}" for i in range(12)]
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(
            topics.directory_events,
            directory(users={u: (False, "hq") for u in users}),
            "acme",
        )
        for u in users:
            await p.send(topics.session_events, login("acme", u, f"s-{u}", HOME_IP), u)
        await alerts.wait_count("e911.alert.raised", len(users))
        assert a.app.sessions_scheduled() > 0 and b.app.sessions_scheduled() > 0
        assert a.app.sessions_scheduled() + b.app.sessions_scheduled() == len(users)

        stopping = time.monotonic()
        assert await a.stop() == 0  # leaves the group: b takes every partition
        # b gives its partitions up for the rebalance: it heard that a left.
        await eventually(lambda: not b.app.ownership.loaded, within=2 * SESSION_TIMEOUT)
        rebalancing = time.monotonic() - stopping
        await eventually(
            lambda: b.app.ownership.loaded and b.app.ownership.partitions == {0, 1, 2, 3},
            within=2 * SESSION_TIMEOUT,
        )
        handover = time.monotonic() - stopping
        # Both well before a's session could time out: only a member that left is replaced
        # this early.
        assert rebalancing < SESSION_TIMEOUT / 3, f"rebalance began {rebalancing:.1f} s after stop"
        assert handover < SESSION_TIMEOUT, f"handover took {handover:.1f} s: a did not leave"
        assert b.app.sessions_scheduled() == len(users)
        base = sample(b.app, "e911_checks_total", outcome="mismatch")
        await eventually(
            lambda: sample(b.app, "e911_checks_total", outcome="mismatch") >= base + 2 * len(users)
        )
        per_session = {}
        for m in alerts.of_type("e911.alert.raised"):
            per_session[m.data["session_id"]] = per_session.get(m.data["session_id"], 0) + 1
        assert per_session == {f"s-{u}": 1 for u in users}
        assert await b.stop() == 0
