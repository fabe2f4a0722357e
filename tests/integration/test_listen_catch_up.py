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

import asyncpg

from tests.listener import listener_down, reconnected
from tests.support import Producer, TopicWatcher, directory, eventually, login, sample

HOME_IP = "198.51.100.7"  # the home-net group: location home
LAB_IP = "192.0.2.7"  # no IP group until the test adds one for the lab
LONG = {"initial_delay_seconds": 1.0, "interval_seconds": 120.0}
WAIT = 30.0


async def test_every_change_made_while_the_listener_is_down_is_applied(
    broker, topics, make_settings, start_app, database, pg_admin_dsn
):
    running = await start_app(make_settings(checks={**LONG, "listener_keepalive_seconds": 0.5}))
    app = running.app
    # One account per kind of change, so that none is applied by another's catch-up.
    sessions = {  # account: (user, user's own toggle, session's IP)
        "acme": ("u1", True, HOME_IP),  # the user's assigned location changes
        "globex": ("u2", True, HOME_IP),  # the user is deleted
        "initech": ("u3", True, LAB_IP),  # an IP group is added for the lab
        "umbrella": ("u4", False, HOME_IP),  # the account's toggle is turned off
    }
    conn = await asyncpg.connect(database)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        try:
            for account, (user, on, ip) in sessions.items():
                events = directory(account, users={user: (on, "hq")})
                await p.send_all(topics.directory_events, events, account)
                await p.send(topics.session_events, login(account, user, f"s-{user}", ip), user)
            # Everyone is assigned hq; u3 matches no IP group: every location is recommended.
            raised = await alerts.wait_count("e911.alert.raised", 4, within=WAIT)
            assert {m.data["session_id"] for m in raised} == {"s-u1", "s-u2", "s-u3", "s-u4"}
            caught_before = sample(app, "e911_directory_notices_total", kind="account")
            scheduled = sample(app, "e911_check_lateness_seconds_count")
            caught_dir_before = sample(app, "e911_directory_notices_total", kind="directory")

            async with listener_down(conn, pg_admin_dsn) as pid, conn.transaction():
                await conn.execute(
                    "UPDATE users SET e911_location_id = 'home' WHERE account_id = 'acme'"
                )
                # no row is left to say when
                await conn.execute("DELETE FROM users WHERE account_id = 'globex'")
                await conn.execute(
                    "INSERT INTO ip_groups (account_id, ip_group_id, name, location_id,"
                    " addresses) VALUES ('initech', 'lab-net', 'Lab', 'lab', '{192.0.2.0/24}')"
                )
                await conn.execute(
                    "INSERT INTO ip_group_networks VALUES ('initech', 'lab-net', '192.0.2.0/24')"
                )
                await conn.execute(
                    "UPDATE accounts SET e911_recommendations = false WHERE account_id = 'umbrella'"
                )
            await reconnected(app, conn, pid)

            resolved = await alerts.wait_count("e911.alert.resolved", 4, within=WAIT)
            assert {m.data["session_id"]: m.data["reason"] for m in resolved} == {
                "s-u1": "location_updated",
                "s-u2": "user_unknown",
                "s-u3": "superseded",  # by the alert that recommends the lab
                "s-u4": "recommendations_disabled",
            }
            lab = await alerts.wait_count("e911.alert.raised", 2, session_id="s-u3", within=WAIT)
            assert lab[1].data["recommendation"]["locations"] == [
                {"location_id": "lab", "name": "Lab", "address_line": "1 Main St, Springfield, US"}
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

            async with listener_down(admin, pg_admin_dsn) as pid:
                await tx.commit()
            await reconnected(app, admin, pid)

            resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0]
            assert resolved.data["reason"] == "location_updated"
        finally:
            await writer.close()
            await admin.close()
    assert await running.stop() == 0
