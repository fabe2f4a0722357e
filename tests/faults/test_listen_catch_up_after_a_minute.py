"""The LISTEN catch-up has no time margin: a change missed while the listener was down
is applied however old its account's other changes and however long ago its own
transaction began (docs/spec.md#what-a-check-decides).

Slow (it waits until the directory is more than a minute old): a catch-up that reads
"rows stamped within the last N seconds before the outage" passes every quick test,
and misses here both a deleted user (no row is left to stamp) and a change whose
transaction began more than N seconds before it committed (a row's stamp is its
transaction's start).
"""

from __future__ import annotations

import asyncpg
import pytest

from tests.listener import listener_down, reconnected
from tests.support import Producer, TopicWatcher, directory, eventually, login

HOME_IP = "198.51.100.7"  # the home-net group: location home
LONG = {"initial_delay_seconds": 1.0, "interval_seconds": 600.0}
OLDER_THAN = 65.0  # seconds: past the 60 s margin of a clock-based catch-up
WAIT = 30.0

DIRECTORY_AGE = "SELECT extract(epoch FROM now() - max(updated_at))::float8 FROM users"


@pytest.mark.timeout(240)
async def test_old_accounts_and_long_transactions_are_caught_up(
    broker, topics, make_settings, start_app, database, pg_admin_dsn
):
    running = await start_app(make_settings(checks={**LONG, "listener_keepalive_seconds": 1.0}))
    app = running.app
    conn = await asyncpg.connect(database)
    writer = await asyncpg.connect(database)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        try:
            for account, user in (("acme", "u1"), ("globex", "u2")):
                events = directory(account, users={user: (True, "hq")})
                await p.send_all(topics.directory_events, events, account)
                await p.send(
                    topics.session_events, login(account, user, f"s-{user}", HOME_IP), user
                )
            await alerts.wait_count("e911.alert.raised", 2, within=WAIT)

            # acme's fix begins now and commits only during the outage, a minute on.
            tx = writer.transaction()
            await tx.start()
            await writer.execute("UPDATE users SET e911_location_id = 'home' WHERE user_id = 'u1'")

            async def old() -> bool:
                return float(await conn.fetchval(DIRECTORY_AGE)) > OLDER_THAN

            await eventually(old, within=OLDER_THAN + 30, step=1.0)
            async with listener_down(conn, pg_admin_dsn) as pid:
                await tx.commit()
                await conn.execute("DELETE FROM users WHERE user_id = 'u2'")
            await reconnected(app, conn, pid)

            resolved = await alerts.wait_count("e911.alert.resolved", 2, within=WAIT)
            assert {m.data["session_id"]: m.data["reason"] for m in resolved} == {
                "s-u1": "location_updated",
                "s-u2": "user_unknown",
            }
        finally:
            await writer.close()
            await conn.close()
    assert await running.stop() == 0
