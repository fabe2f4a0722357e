"""Directory changes made while the LISTEN connection is down are all applied after it
reconnects by itself (docs/spec.md#what-a-check-decides): its backend is terminated by
SQL, the directory and the users change meanwhile, and nothing calls anything by hand.

The scheduled interval is 120 s and each test waits at most WAIT, so every alert
raised or resolved here after the first check comes from the catch-up (or a notice),
never from a scheduled check. The catch-up is by transaction id, not by clock
(daemon/store/missed_changes.py): the second test commits a change whose transaction
began before the listener's last keepalive marker, which a "newer than the last id
seen" rule would miss.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from e911d.daemon.store.notify import APPLICATION_NAME
from tests.support import Producer, TopicWatcher, directory, eventually, login, sample

HOME_IP = "198.51.100.7"  # the home-net group: location home
LAB_IP = "192.0.2.7"  # no IP group until the test adds one for the lab
LONG = {"initial_delay_seconds": 1.0, "interval_seconds": 120.0}
WAIT = 30.0

LISTENER_PID = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()"
)


async def _listener_pid(conn: asyncpg.Connection) -> int:
    """The LISTEN connection as a DBA finds it: by its application_name."""
    rows = await conn.fetch(LISTENER_PID, APPLICATION_NAME)
    assert len(rows) == 1, rows
    return int(rows[0]["pid"])


@contextlib.asynccontextmanager
async def _listener_down(conn: asyncpg.Connection, admin_dsn: str) -> AsyncIterator[int]:
    """The listener's backend terminated, and kept from reconnecting (the database
    refuses new connections) until the block ends: what the block commits is
    committed before the new LISTEN, so only the catch-up can apply it."""
    pid = await _listener_pid(conn)
    name = await conn.fetchval("SELECT current_database()")
    admin = await asyncpg.connect(admin_dsn)  # a database may not lock itself out
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
            yield pid
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def _reconnected(app, conn: asyncpg.Connection, old_pid: int) -> None:
    async def up() -> bool:
        rows = await conn.fetch(LISTENER_PID, APPLICATION_NAME)
        return [r["pid"] for r in rows] not in ([], [old_pid]) and sample(
            app, "e911_directory_listener_up"
        ) == 1

    await eventually(up, within=WAIT, step=0.05)


async def test_every_change_made_while_the_listener_is_down_is_applied(
    broker, topics, make_settings, start_app, database, pg_admin_dsn
):
    running = await start_app(make_settings(checks={**LONG, "listener_keepalive_seconds": 0.5}))
    app = running.app
    users = {"u1": (True, "hq"), "u2": (True, "hq"), "u3": (True, "hq")}
    conn = await asyncpg.connect(database)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        try:
            await p.send_all(topics.directory_events, directory(users=users), "acme")
            await p.send(topics.session_events, login("acme", "u1", "s-u1", HOME_IP), "u1")
            await p.send(topics.session_events, login("acme", "u2", "s-u2", HOME_IP), "u2")
            await p.send(topics.session_events, login("acme", "u3", "s-u3", LAB_IP), "u3")
            # u3 matches no IP group: every location is recommended.
            raised = await alerts.wait_count("e911.alert.raised", 3, within=WAIT)
            assert {m.data["session_id"] for m in raised} == {"s-u1", "s-u2", "s-u3"}
            caught_before = sample(app, "e911_directory_notices_total", kind="account")
            scheduled = sample(app, "e911_check_lateness_seconds_count")
            caught_dir_before = sample(app, "e911_directory_notices_total", kind="directory")

            async with _listener_down(conn, pg_admin_dsn) as pid, conn.transaction():
                # a user's assigned location (u1 is at home: now it matches)
                await conn.execute(
                    "UPDATE users SET e911_location_id = 'home' WHERE user_id = 'u1'"
                )
                # a user gone from the directory (no row is left to say when)
                await conn.execute("DELETE FROM users WHERE user_id = 'u2'")
                # the directory: an IP group for the lab, where u3 (assigned hq) is
                await conn.execute(
                    "INSERT INTO ip_groups (account_id, ip_group_id, name, location_id,"
                    " addresses) VALUES ('acme', 'lab-net', 'Lab', 'lab', '{192.0.2.0/24}')"
                )
                await conn.execute(
                    "INSERT INTO ip_group_networks VALUES ('acme', 'lab-net', '192.0.2.0/24')"
                )
            await _reconnected(app, conn, pid)

            resolved = await alerts.wait_count("e911.alert.resolved", 3, within=WAIT)
            assert {m.data["session_id"]: m.data["reason"] for m in resolved} == {
                "s-u1": "location_updated",
                "s-u2": "user_unknown",
                "s-u3": "superseded",  # by the alert that recommends the lab
            }
            lab = await alerts.wait_count("e911.alert.raised", 2, session_id="s-u3", within=WAIT)
            assert lab[1].data["recommendation"]["locations"] == [
                {"location_id": "lab", "name": "Lab"}
            ]
            # Heard through the catch-up: live notices would have said "user".
            assert sample(app, "e911_directory_notices_total", kind="account") > caught_before
            assert sample(app, "e911_directory_notices_total", kind="directory") > (
                caught_dir_before
            )
            # ... and applied by the re-evaluation, not by a scheduled check
            assert sample(app, "e911_check_lateness_seconds_count") == scheduled
        finally:
            await conn.close()
    assert await running.stop() == 0


async def test_a_change_in_flight_across_the_last_marker_is_caught_up(
    broker, topics, make_settings, start_app, database, pg_admin_dsn
):
    """The transaction started (and got its id) before the listener's last keepalive
    marker and commits while it is down: later ids were already confirmed heard."""
    running = await start_app(make_settings(checks={**LONG, "listener_keepalive_seconds": 0.2}))
    app = running.app
    listener = app.listener
    assert listener is not None
    writer = await asyncpg.connect(database)
    admin = await asyncpg.connect(database)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        try:
            await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}))
            await p.send(topics.session_events, login("acme", "u1", "s-u1", HOME_IP), "u1")
            await alerts.wait_count("e911.alert.raised", 1, within=WAIT)

            tx = writer.transaction()
            await tx.start()
            await writer.execute("UPDATE users SET e911_location_id = 'home'")
            # Other transactions commit after it and are heard, markers are heard back.
            await admin.execute("UPDATE locations SET name = name || '!' WHERE location_id='lab'")
            marks = listener.marks_heard
            await eventually(lambda: listener.marks_heard >= marks + 2, within=WAIT)

            async with _listener_down(admin, pg_admin_dsn) as pid:
                await tx.commit()
            await _reconnected(app, admin, pid)

            resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0]
            assert resolved.data["reason"] == "location_updated"
        finally:
            await writer.close()
            await admin.close()
    assert await running.stop() == 0
