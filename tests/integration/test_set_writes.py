"""The transitions a chunk of checks decides are written set-based, guarded by each
session's version (daemon/store/transitions.py, migration 0011).

A chunk is written in a bounded number of statements whatever its size; a session
changed between its read and the write (ingest, a dismissal, another instance during
a handover) is read and decided again, never written on stale inputs nor twice. The
concurrent change is driven deterministically through the runner's ``before_write``
hook, committed from another connection before the write statement runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.check_batches import ROUNDS, BeforeWrite, CheckConfig, CheckRunner
from e911d.daemon.store.db import _init_connection
from e911d.daemon.store.directory import DirectoryCache
from e911d.daemon.store.sessions import SessionStore


def runner(before_write: BeforeWrite | None = None) -> CheckRunner:
    return CheckRunner(
        AlertStore("alerts", "urn:test"),
        DirectoryCache(),
        CheckConfig(dt.timedelta(hours=1)),
        before_write=before_write,
    )


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def _directory(conn: asyncpg.Connection, sessions: int = 1) -> list[str]:
    """Account acme (toggle on), three located networks; users u1..uN assigned to hq,
    each with a session s1..sN on the home network: every one a mismatch."""
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
    await conn.execute(
        "INSERT INTO users SELECT 'acme', 'u' || i, false, 'hq' FROM generate_series(1, $1) i",
        sessions,
    )
    await conn.execute(
        "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
        " last_event_at, kafka_partition)"
        " SELECT 's' || i, 'acme', 'u' || i, '10.3.0.5', now() - interval '1 hour', now(), i % 4"
        " FROM generate_series(1, $1) i",
        sessions,
    )
    return [f"s{i}" for i in range(1, sessions + 1)]


async def _events(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
    """(type, session, alert id or resolution reason) of every outbox row, in id order."""
    out = []
    for r in await conn.fetch("SELECT value FROM outbox ORDER BY id"):
        e = json.loads(r["value"])
        data = e["data"]
        out.append((e["type"], data["session_id"], data.get("reason") or data["alert_id"]))
    return out


class CountingConnection(asyncpg.Connection):
    """A real connection that records every statement it is asked to run (a batch of
    ``executemany`` as one call per row: what the server executes)."""

    def _count(self, query: str, rows: int = 1) -> None:
        if query.strip().rstrip(";") not in ("BEGIN", "COMMIT", "ROLLBACK"):
            self.statements = [*getattr(self, "statements", []), *[query] * rows]

    async def execute(self, query: str, *args: Any, **kw: Any) -> Any:
        self._count(query)
        return await super().execute(query, *args, **kw)

    async def executemany(self, command: str, args: Any, **kw: Any) -> Any:
        rows = list(args)
        self._count(command, len(rows))
        return await super().executemany(command, rows, **kw)

    async def fetch(self, query: str, *args: Any, **kw: Any) -> Any:
        self._count(query)
        return await super().fetch(query, *args, **kw)

    async def fetchrow(self, query: str, *args: Any, **kw: Any) -> Any:
        self._count(query)
        return await super().fetchrow(query, *args, **kw)

    async def fetchval(self, query: str, *args: Any, **kw: Any) -> Any:
        self._count(query)
        return await super().fetchval(query, *args, **kw)


async def test_a_chunk_is_written_in_a_bounded_number_of_statements(database):
    conn = await asyncpg.connect(database, connection_class=CountingConnection)
    await _init_connection(conn)
    try:
        ids = await _directory(conn, 310)
        checks = runner()
        now = dt.datetime.now(dt.UTC)
        small = await checks.check(conn, ids[:10], now)  # loads the directory snapshot
        conn.statements = []
        large = await checks.check(conn, ids[10:], now)
        statements = conn.statements
        conn.statements = []
        again = await checks.check(conn, ids[:10], now)
        assert len(small.raised) == 10 and len(large.raised) == 300
        # 300 raises cost what 10 do: read, snoozes, claim, alerts with outbox rows.
        assert len(statements) == 4, statements
        # Nothing left to do: one read, nothing written.
        assert again.raised == [] and sorted(again.checked) == sorted(ids[:10])
        assert len(conn.statements) == 1
        assert await conn.fetchval("SELECT count(*) FROM alerts WHERE resolved_at IS NULL") == 310
        assert await conn.fetchval("SELECT count(DISTINCT session_id) FROM alerts") == 310
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 310
        # Each raise moved its session's episode and version once.
        seqs = await conn.fetch("SELECT DISTINCT alert_seq, version FROM sessions")
        assert [tuple(r) for r in seqs] == [(1, 1)]
    finally:
        await conn.close()


async def test_a_supersede_resolves_before_it_raises_for_every_session_of_a_chunk(database):
    conn = await connect(database)
    try:
        ids = await _directory(conn, 50)
        checks = runner()
        first = await checks.check(conn, ids, dt.datetime.now(dt.UTC))
        await conn.execute("UPDATE users SET e911_location_id = 'branch'")
        second = await checks.check(conn, ids, dt.datetime.now(dt.UTC))
        assert {str(r.reason) for r in second.resolved} == {"superseded"}
        assert len(second.resolved) == len(second.raised) == 50
        old = {a.session.session_id: a.alert_id for a in first.raised}
        new = {a.session.session_id: a.alert_id for a in second.raised}
        events = await _events(conn)
        for sid in ids:
            mine = [e for e in events if e[1] == sid]
            assert mine == [
                ("e911.alert.raised", sid, old[sid]),
                ("e911.alert.resolved", sid, "superseded"),
                ("e911.alert.raised", sid, new[sid]),
            ]
    finally:
        await conn.close()


async def test_a_session_changed_between_read_and_write_is_decided_again(database):
    setup = await connect(database)
    conn = await connect(database)
    calls: list[list[str]] = []

    async def ingest_moves_s1(sessions: Sequence[str]) -> None:
        calls.append(list(sessions))
        if len(calls) == 1:
            # As ingest would: s1's new IP is on hq's network, where its user is assigned.
            await setup.execute("UPDATE sessions SET ip = '10.1.0.9' WHERE session_id = 's1'")

    try:
        await _directory(setup, 2)
        report = await runner(ingest_moves_s1).check(conn, ["s1", "s2"], dt.datetime.now(dt.UTC))
        # Both read as mismatches; s1 changed before the write: only s2 was raised, and
        # s1 was read again and found matching (nothing left to write: no second call).
        assert calls == [["s1", "s2"]]
        assert [a.session.session_id for a in report.raised] == ["s2"]
        assert sorted(report.checked) == ["s1", "s2"]
        assert dict(report.outcomes) == {"match": 1, "mismatch": 1}
        assert report.memos["s1"] is not None
        alerts = await setup.fetch("SELECT session_id FROM alerts")
        assert [r["session_id"] for r in alerts] == ["s2"]
        assert [e[1] for e in await _events(setup)] == ["s2"]
        assert await setup.fetchval("SELECT alert_seq FROM sessions WHERE session_id = 's1'") == 0
    finally:
        for c in (conn, setup):
            await c.close()


async def test_a_handover_raise_between_read_and_write_is_not_raised_twice(database):
    """Two instances both own s1's partition for a moment: the other raises the alert
    after this one read s1 and before it writes."""
    setup = await connect(database)
    mine = await connect(database)
    theirs = await connect(database)
    other: list[int] = []

    async def other_instance_checks(sessions: Sequence[str]) -> None:
        if not other:
            report = await runner().check(theirs, sessions, dt.datetime.now(dt.UTC))
            other.append(len(report.raised))

    try:
        await _directory(setup)
        report = await runner(other_instance_checks).check(mine, ["s1"], dt.datetime.now(dt.UTC))
        assert other == [1]
        # Read again after its version moved: the alert is open, nothing to change.
        assert report.raised == [] and report.resolved == []
        assert report.checked == ["s1"] and dict(report.outcomes) == {"mismatch": 1}
        assert await setup.fetchval("SELECT count(*) FROM alerts") == 1
        assert [e[0] for e in await _events(setup)] == ["e911.alert.raised"]
    finally:
        for c in (theirs, mine, setup):
            await c.close()


async def test_a_dismissal_racing_a_raise_snoozes_it(database):
    """Another instance raises s1's alert and the user dismisses it, all after this
    check read s1: its raise (the same alert) is neither written again nor raised anew."""
    setup = await connect(database)
    mine = await connect(database)
    theirs = await connect(database)
    store = AlertStore("alerts", "urn:test")
    dismissed: list[str] = []

    async def raised_and_dismissed(sessions: Sequence[str]) -> None:
        if dismissed:
            return
        report = await runner().check(theirs, sessions, dt.datetime.now(dt.UTC))
        async with theirs.transaction():
            for a in report.raised:
                hit = await store.dismiss(theirs, "s1", a.alert_id, dt.datetime.now(dt.UTC))
                assert hit is not None
                dismissed.append(a.alert_id)

    try:
        await _directory(setup)
        report = await runner(raised_and_dismissed).check(mine, ["s1"], dt.datetime.now(dt.UTC))
        assert len(dismissed) == 1
        assert report.raised == [] and report.resolved == [] and report.checked == ["s1"]
        assert await setup.fetchval("SELECT count(*) FROM alerts WHERE resolved_at IS NULL") == 0
        assert await _events(setup) == [
            ("e911.alert.raised", "s1", dismissed[0]),
            ("e911.alert.resolved", "s1", "dismissed"),
        ]
    finally:
        for c in (theirs, mine, setup):
            await c.close()


async def test_a_dismissal_racing_a_supersede_is_the_only_resolution(database):
    setup = await connect(database)
    conn = await connect(database)
    store = AlertStore("alerts", "urn:test")
    first: list[str] = []

    async def user_dismisses(sessions: Sequence[str]) -> None:
        if len(first) == 1:
            async with setup.transaction():
                assert await store.dismiss(setup, "s1", first[0], dt.datetime.now(dt.UTC))
            first.append("dismissed")

    try:
        await _directory(setup)
        checks = runner(user_dismisses)
        raised = await checks.check(conn, ["s1"], dt.datetime.now(dt.UTC))
        first.append(raised.raised[0].alert_id)
        await setup.execute("UPDATE users SET e911_location_id = 'branch'")
        report = await checks.check(conn, ["s1"], dt.datetime.now(dt.UTC))
        assert first[1:] == ["dismissed"]
        # Decided again without the open alert: no supersede, a raise of the new mismatch.
        assert report.resolved == [] and len(report.raised) == 1
        new = report.raised[0].alert_id
        assert await _events(setup) == [
            ("e911.alert.raised", "s1", first[0]),
            ("e911.alert.resolved", "s1", "dismissed"),
            ("e911.alert.raised", "s1", new),
        ]
    finally:
        for c in (conn, setup):
            await c.close()


async def test_a_session_contended_every_round_is_locked_and_decided_once(database):
    setup = await connect(database)
    conn = await connect(database)
    calls: list[list[str]] = []

    async def rewritten_every_time(sessions: Sequence[str]) -> None:
        calls.append(list(sessions))
        # A network signal reported, then gone: the decision's inputs change each time.
        bssid = None if len(calls) % 2 == 0 else "00:11:22:33:44:55"
        await setup.execute("UPDATE sessions SET bssid = $1 WHERE session_id = 's1'", bssid)

    try:
        await _directory(setup, 2)
        report = await runner(rewritten_every_time).check(
            conn, ["s1", "s2"], dt.datetime.now(dt.UTC)
        )
        # s2 went in the first round; s1 lost every round, then was locked and raised.
        assert calls == [["s1", "s2"]] + [["s1"]] * (ROUNDS - 1)
        assert sorted(a.session.session_id for a in report.raised) == ["s1", "s2"]
        assert sorted(report.checked) == ["s1", "s2"]
        assert await setup.fetchval("SELECT count(*) FROM alerts") == 2
        assert await setup.fetchval("SELECT count(*) FROM outbox") == 2
    finally:
        for c in (conn, setup):
            await c.close()


async def test_every_change_of_a_sessions_inputs_and_every_dismissal_moves_its_version(database):
    conn = await connect(database)
    try:
        await _directory(conn)

        async def version() -> int:
            value: int = await conn.fetchval("SELECT version FROM sessions WHERE session_id = 's1'")
            return value

        assert await version() == 0
        # A keepalive (only last_event_at) changes no decision: the version stays.
        await conn.execute("UPDATE sessions SET last_event_at = now()")
        assert await version() == 0
        await conn.execute("UPDATE sessions SET ip = '10.3.0.6'")  # ingest: a new IP
        assert await version() == 1
        report = await runner().check(conn, ["s1"], dt.datetime.now(dt.UTC))
        assert await version() == 2  # the raise's compare-and-set
        async with conn.transaction():
            now = dt.datetime.now(dt.UTC)
            await AlertStore("alerts", "urn:test").dismiss(
                conn, "s1", report.raised[0].alert_id, now
            )
        assert await version() == 3
    finally:
        await conn.close()


async def test_ingest_storing_a_new_ip_between_read_and_write_makes_the_check_decide_again(
    database,
):
    """Through ingest's own store (lock, fold's row, save) rather than raw SQL: whatever
    ingest's statements become, a session it rewrites must move its version."""
    setup = await connect(database)
    conn = await connect(database)
    sessions = SessionStore()
    moved: list[str] = []

    async def ingest_stores_a_batch(ids: Sequence[str]) -> None:
        if moved:
            return
        async with setup.transaction():
            row = (await sessions.lock(setup, ["s1"]))["s1"]
            await sessions.save(setup, [dataclasses.replace(row, ip="10.1.0.9")])
        moved.append("s1")

    try:
        await _directory(setup)
        report = await runner(ingest_stores_a_batch).check(conn, ["s1"], dt.datetime.now(dt.UTC))
        assert moved == ["s1"]
        assert report.raised == [] and dict(report.outcomes) == {"match": 1}
        assert await setup.fetchval("SELECT count(*) FROM alerts") == 0
        # Expiry by the housekeeping sweep moves it too.
        before = await setup.fetchval("SELECT version FROM sessions WHERE session_id = 's1'")
        past = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert await sessions.expire(setup, [1], past) == ["s1"]
        after = await setup.fetchval("SELECT version FROM sessions WHERE session_id = 's1'")
        assert after > before
    finally:
        for c in (conn, setup):
            await c.close()


async def test_a_keepalive_between_read_and_write_does_not_send_the_check_round_again(database):
    setup = await connect(database)
    conn = await connect(database)
    calls: list[list[str]] = []

    async def keepalive(sessions: Sequence[str]) -> None:
        calls.append(list(sessions))
        await setup.execute("UPDATE sessions SET last_event_at = now() WHERE session_id = 's1'")

    try:
        await _directory(setup)
        report = await runner(keepalive).check(conn, ["s1"], dt.datetime.now(dt.UTC))
        assert calls == [["s1"]]  # written in the first round
        assert [a.session.session_id for a in report.raised] == ["s1"]
    finally:
        for c in (conn, setup):
            await c.close()
