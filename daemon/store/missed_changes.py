"""How far a LISTEN connection has heard, and what it missed while it was down.

The order is the database's own: transaction ids (xid8), which never repeat or go
back on one WAL timeline, instead of a wall clock and a margin. The listener keeps a *horizon*: the
oldest transaction that was still in flight when it last proved it had heard every
notice before (its own marker NOTIFY heard back, or the read after a reconnection).
Every transaction that committed since then has an id at or above the horizon, even
one that started long before and committed while the listener was down, so after a
reconnection :func:`missed_since` reads every account whose directory version or user
version such a transaction bumped (migration 0009). A transaction that commits after
that read is heard live on the new connection. Reading a little more than was missed
(transactions above the horizon that were heard anyway) costs a redundant
re-evaluation of those accounts, never a wrong decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from e911d.daemon.store.db import load_queries

SQL = load_queries("missed_changes.sql")
MARK_KIND = "mark"


@dataclass(frozen=True, slots=True)
class Horizon:
    """How far a listener has heard: the oldest transaction in flight when it last
    proved it, on the WAL timeline of then."""

    xmin: int
    timeline: str

    def advanced(self, xmin: int) -> Horizon:
        return Horizon(max(self.xmin, xmin), self.timeline)


@dataclass(frozen=True, slots=True)
class Missed:
    """What a reconnection read: the accounts changed at or after the old horizon (by
    kind: 'directory' or 'account'), whether that horizon means nothing here, and the
    new horizon.

    The old horizon means nothing on another timeline (a failover: a standby promoted
    after asynchronous replication may hand out again ids the old primary had used; a
    point-in-time restore) or when the server's ids are behind it: then everything
    may have changed. A restart of the same server keeps its timeline and its ids.
    """

    changed: tuple[tuple[str, str], ...]
    everything: bool
    horizon: Horizon


@dataclass(frozen=True, slots=True)
class Mark:
    """A listener's own probe heard back: every notice before it was heard."""

    token: str
    horizon: int


def parse_mark(payload: str) -> Mark | None:
    """A marker NOTIFY's payload, or None for anything else."""
    if '"mark"' not in payload:  # cheap: most payloads are directory notices
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("k") != MARK_KIND:
        return None
    token, xmin = data.get("t"), data.get("x")
    if not isinstance(token, str) or not isinstance(xmin, str) or not xmin.isdigit():
        return None
    return Mark(token, int(xmin))


async def send_mark(conn: asyncpg.Connection, channel: str, token: str) -> None:
    """NOTIFY ``channel`` with a marker that carries the current horizon."""
    await conn.execute(SQL["mark"], channel, token)


async def missed_since(conn: asyncpg.Connection, horizon: Horizon | None) -> Missed:
    """The changes at or after ``horizon`` (None: the first connection, nothing to
    catch up) and the new horizon, read in one snapshot. Call it after LISTEN."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        now = await conn.fetchrow(SQL["horizon"])
        new = Horizon(int(now["xmin"]), now["timeline"])
        if horizon is None:
            return Missed((), False, new)
        if new.timeline != horizon.timeline or int(now["xmax"]) < horizon.xmin:
            return Missed((), True, new)
        rows = await conn.fetch(SQL["bumped_since"], str(horizon.xmin))
    changed = tuple(sorted({(r["kind"], r["account_id"]) for r in rows}))
    return Missed(changed, False, new)
