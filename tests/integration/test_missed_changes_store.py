"""What a reconnecting listener reads (daemon/store/missed_changes.py), against the
real triggers: every account a transaction at or after the horizon changed, by kind,
and everything when the horizon comes from another timeline or from ahead of it."""

from __future__ import annotations

import dataclasses

import asyncpg

from e911d.daemon.store.missed_changes import Horizon, missed_since

DIRECTORY = """
INSERT INTO accounts VALUES ('acme', true), ('globex', true), ('initech', true);
INSERT INTO users VALUES ('acme', 'u1', true, 'hq'), ('globex', 'u2', true, 'hq');
INSERT INTO locations (account_id, location_id, name, address) VALUES
    ('acme', 'hq', 'HQ', '{}'), ('initech', 'hq', 'HQ', '{}');
"""


async def test_the_accounts_changed_since_the_horizon_and_only_those(database):
    conn = await asyncpg.connect(database)
    early = await asyncpg.connect(database)
    try:
        await conn.execute(DIRECTORY)
        # A transaction that began (and got its id) before the horizon was taken ...
        slow = early.transaction()
        await slow.start()
        await early.execute(
            "UPDATE locations SET name = 'Head office' WHERE account_id = 'initech'"
        )
        horizon = (await missed_since(conn, None)).horizon
        # ... and others after it: a user deleted, a toggle flipped.
        await conn.execute("DELETE FROM users WHERE user_id = 'u2'")
        await conn.execute(
            "UPDATE accounts SET e911_recommendations = false WHERE account_id = 'acme'"
        )
        missed = await missed_since(conn, horizon)
        assert missed.changed == (("account", "acme"), ("account", "globex"))  # not yet initech
        await slow.commit()  # commits after the horizon: it was in flight then

        missed = await missed_since(conn, horizon)
        assert not missed.everything
        assert missed.changed == (
            ("account", "acme"),
            ("account", "globex"),
            ("directory", "initech"),
        )
        assert missed.horizon.xmin > horizon.xmin
        assert (await missed_since(conn, missed.horizon)).changed == ()
    finally:
        await early.close()
        await conn.close()


async def test_a_horizon_from_another_timeline_or_ahead_means_everything(database):
    conn = await asyncpg.connect(database)
    try:
        horizon = (await missed_since(conn, None)).horizon
        assert not (await missed_since(conn, horizon)).everything
        assert horizon.timeline == "00000001"
        promoted = Horizon(horizon.xmin, "00000002")  # as if from a failover's new timeline
        assert (await missed_since(conn, promoted)).everything
        ahead = dataclasses.replace(horizon, xmin=horizon.xmin + 10**9)
        assert (await missed_since(conn, ahead)).everything
    finally:
        await conn.close()
