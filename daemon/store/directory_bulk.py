"""Directory events written in bulk: a run of same-kind events is one statement.

A directory import is mostly user events (250,000 users for 100 accounts), and one
statement per event made the directory topic the slowest thing to ingest. Events are
applied in order; consecutive events of one bulk kind (account upserts, user upserts,
user location changes, user deletes) collapse into one set-based statement, keeping
the last event per key, which is what applying them one by one leaves behind (each
replaces the whole row or deletes it). Everything else, rare and structural
(locations, IP groups, account deletes), goes through :func:`apply_change` as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from e911d.daemon.core.events import (
    AccountUpserted,
    DirectoryChange,
    UserDeleted,
    UserLocationChanged,
    UserUpserted,
)
from e911d.daemon.store.db import load_queries
from e911d.daemon.store.directory import apply_change

SQL = load_queries("directory_bulk.sql")

_Key = tuple[str, ...]


def _key(change: Any) -> _Key:
    if isinstance(change, AccountUpserted):
        return (change.account_id,)
    return (change.account_id, change.user_id)


_COLUMNS: dict[type, tuple[str, tuple[str, ...]]] = {
    AccountUpserted: (SQL["upsert_accounts"], ("account_id", "e911_recommendations")),
    UserUpserted: (
        SQL["upsert_users"],
        ("account_id", "user_id", "e911_recommendations", "e911_location_id"),
    ),
    UserLocationChanged: (SQL["set_users_location"], ("account_id", "user_id", "e911_location_id")),
    UserDeleted: (SQL["delete_users"], ("account_id", "user_id")),
}


BULK = tuple(_COLUMNS)


async def _flush(conn: asyncpg.Connection, kind: type, run: dict[_Key, Any]) -> None:
    rows = [run[k] for k in sorted(run)]
    if len(rows) == 1:
        await apply_change(conn, rows[0])
        return
    statement, fields = _COLUMNS[kind]
    await conn.execute(statement, *([getattr(r, f) for r in rows] for f in fields))


async def apply_changes(conn: asyncpg.Connection, changes: Sequence[DirectoryChange]) -> None:
    """Apply the batch's directory changes in order, runs of one bulk kind at once."""
    kind: type | None = None
    run: dict[_Key, Any] = {}
    for change in changes:
        if type(change) is not kind and kind is not None:
            await _flush(conn, kind, run)
            kind, run = None, {}
        if isinstance(change, BULK):
            kind = type(change)
            run[_key(change)] = change  # the last event per key wins
        else:
            await apply_change(conn, change)
    if kind is not None:
        await _flush(conn, kind, run)
