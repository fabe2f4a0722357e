"""Which owned sessions a directory change affects.

Re-evaluation (:mod:`e911d.daemon.services.reevaluation`) asks; the notices come
from :mod:`e911d.daemon.store.notify`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from e911d.daemon.store.db import load_queries
from e911d.daemon.store.notify import PendingChanges

SQL = load_queries("reevaluate.sql")


async def affected_sessions(
    conn: asyncpg.Connection,
    changes: PendingChanges,
    partitions: Sequence[int],
    first_due: dt.datetime,
) -> list[str]:
    """The ids, sorted and unique, of the active sessions of ``partitions`` past their
    first check (logged in before ``first_due``) that ``changes`` can affect."""
    parts = list(partitions)
    if changes.everything:
        rows = await conn.fetch(SQL["sessions_of_partitions"], parts, first_due)
        return sorted({r["session_id"] for r in rows})
    rows = []
    if changes.accounts:
        rows += await conn.fetch(
            SQL["sessions_of_accounts"], sorted(changes.accounts), parts, first_due
        )
    users = sorted(changes.users)
    if users:
        rows += await conn.fetch(
            SQL["sessions_of_users"],
            [a for a, _ in users],
            [u for _, u in users],
            parts,
            first_due,
        )
    return sorted({r["session_id"] for r in rows})
