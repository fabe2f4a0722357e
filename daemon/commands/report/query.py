"""The one read of the database a report needs: filtered and counted in SQL
(``daemon/sql/report.sql``), turned into :class:`AccountRows` for the pure part.

The clock is a parameter (``window.until``, ``generated_at``) so a test can script a
history at exact times; the command passes the real one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from e911d.daemon.commands.report.figures import (
    AccountRows,
    GroupCount,
    Report,
    Window,
    build_report,
)
from e911d.daemon.store.db import load_queries, require_tables

SQL: Final = load_queries("report.sql")
TABLES: Final = ("accounts", "ip_groups", "alerts", "checked_sessions")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which accounts: ``ids`` exactly (empty: every account, directory and history)."""

    ids: tuple[str, ...] = ()
    top: int = 5


async def require_schema(conn: asyncpg.Connection) -> None:
    await require_tables(conn, TABLES, "alert history")


async def _accounts(conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, tuple[bool, bool]]:
    """account id → (in the directory, named by some history row)."""
    if not ids:
        ids = [r["account_id"] for r in await conn.fetch(SQL["all_accounts"])]
    rows = await conn.fetch(SQL["known_accounts"], list(ids))
    return {r["account_id"]: (r["in_directory"], r["in_history"]) for r in rows}


async def read_report(
    conn: asyncpg.Connection,
    selection: Selection,
    window: Window,
    *,
    retention: dt.timedelta,
    generated_at: dt.datetime,
) -> tuple[Report, list[str]]:
    """The report, and the selected ids that neither the directory nor the history
    knows (probably a typo: listed with zeros, and worth a warning)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        known = await _accounts(conn, sorted(set(selection.ids)))
        ids = list(known)
        span = (ids, window.start, window.until)
        checked = await conn.fetch(SQL["sessions_checked"], ids, window.day_start, window.until)
        opened = await conn.fetch(SQL["open_alerts"], ids)
        raised = await conn.fetch(SQL["raised"], *span)
        resolved = await conn.fetch(SQL["resolved"], *span)
        fixes = await conn.fetch(SQL["fix_durations"], *span)
        top = await conn.fetch(SQL["top_groups"], *span, selection.top)
    by_reason: dict[str, dict[str, int]] = defaultdict(dict)
    for r in resolved:
        by_reason[r["account_id"]][r["reason"] or "unknown"] = r["n"]
    seconds: dict[str, list[float]] = defaultdict(list)
    for r in fixes:
        seconds[r["account_id"]].append(r["seconds"])
    groups: dict[str, list[GroupCount]] = defaultdict(list)
    for r in top:
        groups[r["account_id"]].append(GroupCount(r["ip_group_id"], r["name"], r["alerts"]))
    n_checked = {r["account_id"]: r["n"] for r in checked}
    n_open = {r["account_id"]: (r["open_alerts"], r["users"]) for r in opened}
    n_raised = {r["account_id"]: (r["n"], r["no_group"]) for r in raised}
    rows = [
        AccountRows(
            account_id=a,
            in_directory=known[a][0],
            sessions_checked=n_checked.get(a, 0),
            users_mislocated_now=n_open.get(a, (0, 0))[1],
            open_alerts=n_open.get(a, (0, 0))[0],
            alerts_raised=n_raised.get(a, (0, 0))[0],
            resolved=by_reason.get(a, {}),
            fix_seconds=seconds.get(a, []),
            top_groups=groups.get(a, []),
            no_group=n_raised.get(a, (0, 0))[1],
        )
        for a in ids
    ]
    unknown = [a for a, (directory, history) in known.items() if not (directory or history)]
    return build_report(generated_at, window, retention, rows), unknown
