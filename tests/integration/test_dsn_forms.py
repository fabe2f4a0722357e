"""Both libpq DSN forms the README promises run the daemon (docs/spec.md#running-e911d):
asyncpg reads only URIs, so a key=value DSN used to pass the configuration and then
fail at connect."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import asyncpg

from e911d.config import Settings
from e911d.daemon.store.db import DatabaseError, PoolConfig, open_pool


def keyword_form(uri: str) -> str:
    """The same connection as libpq key=value pairs, every value quoted as libpq reads it."""
    parts = urllib.parse.urlsplit(uri)
    pairs = {
        "user": urllib.parse.unquote(parts.username or ""),
        "password": urllib.parse.unquote(parts.password or ""),
        "host": urllib.parse.unquote(parts.hostname or ""),
        "port": str(parts.port or ""),
        "dbname": urllib.parse.unquote(parts.path.lstrip("/")),
        **dict(urllib.parse.parse_qsl(parts.query)),
    }

    def quoted(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{k}={quoted(v)}" for k, v in pairs.items() if v)


async def test_the_daemon_runs_on_a_keyword_dsn(
    database: str, make_settings: Callable[..., Settings], start_app: Any
) -> None:
    dsn = keyword_form(database)
    assert "://" not in dsn and "dbname=" in dsn
    running = await start_app(make_settings(postgres={"dsn": dsn}))
    await running.app.listener.connected.wait()  # the LISTEN connection too
    conn = await asyncpg.connect(database)
    try:
        tables = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert tables > 0  # migrated through the key=value DSN
    assert await running.stop() == 0


async def test_a_pool_on_a_keyword_dsn(database: str) -> None:
    async with open_pool(PoolConfig(keyword_form(database), 1, 1)) as pool:
        assert await pool.fetchval("SELECT current_database()") == (
            urllib.parse.urlsplit(database).path.lstrip("/")
        )


async def test_a_dsn_the_driver_refuses_fails_at_once_naming_the_setting() -> None:
    """Not retried as if PostgreSQL were away: no wait can mend it."""
    try:
        async with open_pool(PoolConfig("postgresql://db/x?sslmode=verify_everything", 1, 1)):
            raise AssertionError("connected")
    except DatabaseError as exc:
        assert exc.transient is False
        assert "E911_POSTGRES__DSN: sslmode='verify_everything'" in str(exc)
