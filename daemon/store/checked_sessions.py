"""The ``checked_sessions`` record: which sessions were checked on which UTC day.

Evidence for ``e911d report``, written off the check path by the checks service's
writer task (the day's set itself is :mod:`e911d.daemon.core.checked_today`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from e911d.daemon.store.db import load_queries

SQL = load_queries("checked.sql")


async def record_checked(
    conn: asyncpg.Connection, sessions: Sequence[str], accounts: Sequence[str], at: dt.datetime
) -> None:
    """One upsert for many sessions (``accounts`` parallel to ``sessions``)."""
    await conn.execute(SQL["record_checked"], sessions, accounts, at)


async def purge_checked(conn: asyncpg.Connection, before: dt.datetime) -> None:
    await conn.execute(SQL["purge_checked"], before)
