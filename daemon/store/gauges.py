"""Reads behind the housekeeping gauges and the database's readiness probe."""

from __future__ import annotations

import asyncpg

from e911d.daemon.store.db import load_queries

SQL = load_queries("gauges.sql")


async def accounts_without_locations(conn: asyncpg.Connection) -> int:
    """Enabled accounts with no location at all: every check of theirs is ``no_locations``."""
    count: int = await conn.fetchval(SQL["accounts_without_locations"])
    return count


async def ping(conn: asyncpg.Connection) -> None:
    """One round trip: the database answers now, not when the pool last saw it."""
    await conn.fetchval("SELECT 1")
