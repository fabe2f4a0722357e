"""Session rows in and out of PostgreSQL; the fold that makes them is
:mod:`e911d.daemon.core.session_fold`."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from e911d.daemon.core.session_fold import SessionRow
from e911d.daemon.store.db import load_queries

SQL = load_queries("sessions.sql")


@dataclass(frozen=True, slots=True)
class PartitionSessions:
    """A partition's active sessions, packed as the database sent them (see
    ``active_in_partitions`` in sql/sessions.sql; schedulers/loaded.py unpacks)."""

    partition: int
    ids: str
    lengths: bytes
    logged_in_at: bytes
    due_order: bytes


def _row(r: asyncpg.Record) -> SessionRow:
    return SessionRow(
        session_id=r["session_id"],
        account_id=r["account_id"],
        user_id=r["user_id"],
        ip=r["ip"],
        logged_in_at=r["logged_in_at"],
        last_event_at=r["last_event_at"],
        partition=r["kafka_partition"],
        ended_at=r["ended_at"],
        alert_seq=r["alert_seq"],
        bssid=r["bssid"],
        switch_chassis=r["switch_chassis"],
        switch_port=r["switch_port"],
    )


class SessionStore:
    """Rows of the sessions table; every call runs on the caller's transaction."""

    async def lock(self, conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, SessionRow]:
        records = await conn.fetch(SQL["lock_sessions"], list(ids))
        return {r["session_id"]: _row(r) for r in records}

    async def save(self, conn: asyncpg.Connection, rows: Iterable[SessionRow]) -> None:
        """One set-based upsert for the whole batch (the rows are already folded, one
        per session), instead of one statement per row."""
        rows = list(rows)
        if not rows:
            return
        await conn.execute(
            SQL["upsert_sessions"],
            [r.session_id for r in rows],
            [r.account_id for r in rows],
            [r.user_id for r in rows],
            [r.ip for r in rows],
            [r.logged_in_at for r in rows],
            [r.last_event_at for r in rows],
            [r.partition for r in rows],
            [r.ended_at for r in rows],
            [r.alert_seq for r in rows],
            [r.bssid for r in rows],
            [r.switch_chassis for r in rows],
            [r.switch_port for r in rows],
        )

    async def active_in_partitions(
        self, conn: asyncpg.Connection, partitions: Sequence[int]
    ) -> AsyncIterator[PartitionSessions]:
        """The active sessions, one partition at a time, through a server-side cursor:
        each partition arrives as one string and three byte strings, so loading a
        million sessions costs a handful of decodes in the driver rather than a record
        (or a list item) per session, and only one partition is in flight at a time.
        Must run in a transaction.
        """
        query = SQL["active_in_partitions"]
        async for r in conn.cursor(query, list(partitions), prefetch=1):
            yield PartitionSessions(
                r["kafka_partition"], r["ids"], r["lengths"], r["logged_in_at"], r["due_order"]
            )

    async def expire(
        self, conn: asyncpg.Connection, partitions: Sequence[int], cutoff: dt.datetime
    ) -> list[str]:
        """End sessions with no event since ``cutoff``; returns their ids."""
        records = await conn.fetch(SQL["expire_sessions"], list(partitions), cutoff)
        return [r["session_id"] for r in records]

    async def purge_tombstones(self, conn: asyncpg.Connection, cutoff: dt.datetime) -> int:
        status: str = await conn.execute(SQL["purge_tombstones"], cutoff)
        return int(status.split()[-1])
