"""Migrations and the schema they produce, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import asyncpg

from e911d.daemon.store.db import migrate, migration_files

EXPECTED_TABLES = {
    "schema_migrations",
    "accounts",
    "users",
    "locations",
    "ip_groups",
    "ip_group_networks",
    "directory_versions",
    "user_versions",
    "confirmed_networks",
    "unconfigured_network_sightings",
    "unconfigured_networks",
    "sessions",
    "alerts",
    "outbox",
    "consumer_offsets",
    "checked_sessions",
}


async def test_migrations_apply_to_an_empty_database_and_are_idempotent(empty_database):
    conn = await asyncpg.connect(empty_database)
    try:
        applied = await migrate(conn)
        assert applied == [name for name, _ in migration_files()]
        assert await migrate(conn) == []
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert tables == EXPECTED_TABLES
        columns = {
            r["column_name"]: r["data_type"]
            for r in await conn.fetch(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'ip_group_networks'"
            )
        }
        assert columns["network"] == "cidr"
        versions = await conn.fetch("SELECT version FROM schema_migrations")
        assert [r["version"] for r in versions] == applied
    finally:
        await conn.close()


async def test_concurrent_migrations_serialise(empty_database):
    conns = [await asyncpg.connect(empty_database) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(migration_files())]
    finally:
        for c in conns:
            await c.close()


async def test_directory_triggers_bump_the_version_whoever_writes(database):
    """A change written by plain SQL from another process is seen by version."""
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO locations (account_id, location_id, name, address) "
            "VALUES ('a', 'l', 'L', '{}')"
        )
        v1 = await conn.fetchval("SELECT version FROM directory_versions WHERE account_id='a'")
        await conn.execute(
            "INSERT INTO ip_groups (account_id, ip_group_id, name, location_id) "
            "VALUES ('a', 'g', 'G', 'l')"
        )
        await conn.execute(
            "INSERT INTO ip_group_networks (account_id, ip_group_id, network) "
            "VALUES ('a', 'g', '10.0.0.0/8')"
        )
        v2 = await conn.fetchval("SELECT version FROM directory_versions WHERE account_id='a'")
        await conn.execute("DELETE FROM ip_groups WHERE account_id='a'")  # cascades networks
        v3 = await conn.fetchval("SELECT version FROM directory_versions WHERE account_id='a'")
        assert v1 < v2 < v3
        assert await conn.fetchval("SELECT count(*) FROM ip_group_networks") == 0
    finally:
        await conn.close()


async def test_directory_triggers_notify_what_a_check_reads(database):
    """Every writer's change is announced once per transaction; no-op updates are not."""
    writer = await asyncpg.connect(database)
    listener = await asyncpg.connect(database)
    heard: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    try:
        await migrate(writer)
        await listener.add_listener(
            "e911_directory", lambda _c, _p, _ch, payload: heard.put_nowait(json.loads(payload))
        )

        async def expect(*statements: str) -> list[dict[str, object]]:
            async with writer.transaction():
                for stmt in statements:
                    await writer.execute(stmt)
            await writer.execute("SELECT pg_notify('e911_directory', '\"fence\"')")
            got = []
            while (item := await asyncio.wait_for(heard.get(), 5)) != "fence":
                got.append(item)
            return got

        assert await expect("INSERT INTO accounts VALUES ('a', false)") == [
            {"k": "account", "a": "a"}
        ]
        # Only the toggle matters for an account; touching it says nothing.
        assert await expect("UPDATE accounts SET updated_at = now()") == []
        assert await expect("UPDATE accounts SET e911_recommendations = true") == [
            {"k": "account", "a": "a"}
        ]
        assert await expect("INSERT INTO users (account_id, user_id) VALUES ('a', 'u')") == [
            {"k": "user", "a": "a", "u": "u"}
        ]
        assert await expect("UPDATE users SET updated_at = now()") == []
        assert await expect("UPDATE users SET e911_location_id = 'l'") == [
            {"k": "user", "a": "a", "u": "u"}
        ]
        # A bulk change of one account's locations and groups is one notice.
        assert await expect(
            "INSERT INTO locations (account_id, location_id, name, address) "
            "SELECT 'a', 'l' || i, 'L', '{}' FROM generate_series(1, 50) i",
            "INSERT INTO ip_groups (account_id, ip_group_id, name, location_id) "
            "VALUES ('a', 'g', 'G', 'l1')",
            "INSERT INTO ip_group_networks VALUES ('a', 'g', '10.0.0.0/8')",
        ) == [{"k": "directory", "a": "a"}]
        assert await expect("DELETE FROM users WHERE user_id = 'u'") == [
            {"k": "user", "a": "a", "u": "u"}
        ]
        # TRUNCATE fires no row trigger: it says "everything" and bumps every version.
        version = await writer.fetchval("SELECT version FROM directory_versions")
        assert await expect("TRUNCATE ip_group_networks") == [{"k": "all"}]
        assert await writer.fetchval("SELECT version FROM directory_versions") == version + 1
        # An insert that brings its own (old) updated_at still says when it happened.
        await writer.execute(
            "INSERT INTO users (account_id, user_id, updated_at) VALUES ('a', 'old', 'epoch')"
        )
        assert await writer.fetchval(
            "SELECT updated_at > now() - interval '1 minute' FROM users WHERE user_id = 'old'"
        )
        # updated_at follows every update, whoever forgets to set it (for catching up).
        before = await writer.fetchval("SELECT updated_at FROM locations WHERE location_id='l1'")
        await writer.execute("UPDATE locations SET name = 'L1' WHERE location_id = 'l1'")
        after = await writer.fetchval("SELECT updated_at FROM locations WHERE location_id='l1'")
        assert after > before
    finally:
        await listener.close()
        await writer.close()


async def test_one_open_alert_per_session_is_enforced(database):
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn)
        insert = (
            "INSERT INTO alerts (alert_id, session_id, account_id, user_id, kafka_partition, "
            "fingerprint, episode, payload, raised_at) "
            "VALUES ($1, 's', 'a', 'u', 0, 'f', 1, '{}', now())"
        )
        await conn.execute(insert, "a1")
        try:
            await conn.execute(insert, "a2")
        except asyncpg.UniqueViolationError:
            pass
        else:
            raise AssertionError("a second open alert for one session was accepted")
    finally:
        await conn.close()
