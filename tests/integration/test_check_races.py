"""Two checks of one session at the same time (the tick and an immediate re-evaluation,
or two instances during a handover) are serialised by the session's row lock, and the
second sees what the first committed: no duplicate alert, no second resolution."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import asyncpg
import pytest

from e911d.daemon.core.model import ResolveReason
from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.check_batches import CheckConfig, CheckRunner
from e911d.daemon.store.db import _init_connection, migrate
from e911d.daemon.store.directory import DirectoryCache
from tests.support import eventually


def runner() -> CheckRunner:
    return CheckRunner(
        AlertStore("alerts", "urn:test"), DirectoryCache(), CheckConfig(dt.timedelta(hours=1))
    )


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def _directory(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    await conn.execute("INSERT INTO accounts VALUES ('acme', true)")
    for loc, net in (("hq", "10.1.0.0/16"), ("branch", "10.2.0.0/16"), ("home", "10.3.0.0/16")):
        await conn.execute(
            "INSERT INTO locations (account_id, location_id, name, address)"
            " VALUES ('acme', $1, $1, '{}')",
            loc,
        )
        await conn.execute(
            "INSERT INTO ip_groups (account_id, ip_group_id, name, location_id, addresses)"
            " VALUES ('acme', 'g-' || $1, $1, $1, ARRAY[$2])",
            loc,
            net,
        )
        await conn.execute(
            "INSERT INTO ip_group_networks VALUES ('acme', 'g-' || $1, $2::cidr)", loc, net
        )
    await conn.execute("INSERT INTO users VALUES ('acme', 'u1', false, 'hq')")
    await conn.execute(
        "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
        " last_event_at, kafka_partition)"
        " VALUES ('s1', 'acme', 'u1', '10.3.0.5', now() - interval '1 hour', now(), 0)"
    )


@pytest.mark.parametrize("screen", [False, True])
@pytest.mark.parametrize(
    ("new_location", "reason"), [("branch", "superseded"), ("home", "location_updated")]
)
async def test_concurrent_checks_of_one_session_decide_once(database, new_location, reason, screen):
    setup = await connect(database)
    first = await connect(database)
    second = await connect(database)
    try:
        await _directory(setup)
        async with setup.transaction():
            report = await runner().run(setup, ["s1"], dt.datetime.now(dt.UTC))
        assert len(report.raised) == 1
        await setup.execute(
            "UPDATE users SET e911_location_id = $1 WHERE user_id = 'u1'", new_location
        )

        # The first check decides and holds the lock; the second waits for it.
        tx = first.transaction()
        await tx.start()
        one = await runner().run(first, ["s1"], dt.datetime.now(dt.UTC))
        assert [str(r.reason) for r in one.resolved] == [reason]

        async def second_check():
            if screen:
                # Its unlocked read sees the change still to make: it locks and waits.
                return await runner().check(second, ["s1"], dt.datetime.now(dt.UTC))
            async with second.transaction():
                return await runner().run(second, ["s1"], dt.datetime.now(dt.UTC))

        waiting = asyncio.create_task(second_check())

        async def blocked() -> bool:
            return bool(await setup.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))

        await eventually(blocked, within=5)
        await tx.commit()
        two = await asyncio.wait_for(waiting, 5)  # no unique violation: it saw the commit
        assert two.resolved == [] and two.raised == []
        assert two.checked == ["s1"]
        # What the second check saw after the wait changes nothing: it may be remembered.
        assert two.memos["s1"] is not None

        open_alerts = await setup.fetchval("SELECT count(*) FROM alerts WHERE resolved_at IS NULL")
        assert open_alerts == (1 if reason == "superseded" else 0)
        events = [json.loads(r["value"]) for r in await setup.fetch("SELECT value FROM outbox")]
        resolved = [e for e in events if e["type"] == "e911.alert.resolved"]
        assert [e["data"]["reason"] for e in resolved] == [reason]  # one resolution event
    finally:
        for conn in (second, first, setup):
            await conn.close()


async def test_an_alert_resolved_elsewhere_gets_no_second_event(database):
    conn = await connect(database)
    try:
        await _directory(conn)
        store = AlertStore("alerts", "urn:test")
        async with conn.transaction():
            report = await runner().run(conn, ["s1"], dt.datetime.now(dt.UTC))
        alert_id = report.raised[0].alert_id
        now = dt.datetime.now(dt.UTC)
        async with conn.transaction():
            assert await store.dismiss(conn, "s1", alert_id, now) is not None
        async with conn.transaction():
            # Dismissed twice (a redelivery): nothing more happens.
            assert await store.dismiss(conn, "s1", alert_id, now) is None
            ended = await store.resolve_sessions(conn, ["s1"], ResolveReason.SESSION_ENDED, now)
            assert ended == []
        events = [json.loads(r["value"]) for r in await conn.fetch("SELECT value FROM outbox")]
        resolved = [e["data"]["reason"] for e in events if e["type"] == "e911.alert.resolved"]
        assert resolved == ["dismissed"]
    finally:
        await conn.close()


@pytest.mark.parametrize("screen", [True, False])
async def test_a_check_that_changes_nothing_waits_for_no_lock(database, screen):
    setup = await connect(database)
    holder = await connect(database)
    checker = await connect(database)
    try:
        await _directory(setup)
        await setup.execute("UPDATE users SET e911_location_id = 'home' WHERE user_id = 'u1'")
        # Someone holds the session's lock (ingest storing a batch, another check).
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM sessions WHERE session_id = 's1' FOR UPDATE")
        checking = asyncio.create_task(
            runner().check(checker, ["s1"], dt.datetime.now(dt.UTC), screen=screen)
        )

        async def settled_or_blocked() -> bool:
            waiting = await setup.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")
            return checking.done() or bool(waiting)

        await eventually(settled_or_blocked, within=5)
        # Screened: settled from one unlocked read. Locked (as before): it waits.
        assert checking.done() is screen
        await tx.commit()
        report = await asyncio.wait_for(checking, 5)
        assert dict(report.outcomes) == {"match": 1}
        assert report.raised == [] and report.resolved == []
    finally:
        for conn in (checker, holder, setup):
            await conn.close()
