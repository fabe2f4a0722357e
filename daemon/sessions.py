"""Session state: folding a batch of session events into rows (pure), and storing them.

The fold is pure so that its idempotence (a replayed topic gives the same final state)
is tested with plain values; :class:`SessionStore` only moves rows in and out of
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace

import asyncpg
import structlog

from e911d.consumers.events import SessionEvent, SessionEventKind
from e911d.consumers.network import NetworkSignals
from e911d.daemon.db import load_queries

log = structlog.get_logger("e911d.sessions")
SQL = load_queries("sessions.sql")
_NO_NETWORK = NetworkSignals()


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    account_id: str
    user_id: str
    ip: str
    logged_in_at: dt.datetime
    last_event_at: dt.datetime
    partition: int
    ended_at: dt.datetime | None = None
    alert_seq: int = 0
    # What the client last reported about its network, normalised (consumers.network);
    # None: nothing. A check reads them with the IP (SPEC §8).
    bssid: str | None = None
    switch_chassis: str | None = None
    switch_port: str | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class PartitionSessions:
    """A partition's active sessions as parallel lists (ids, login times in epoch s)."""

    partition: int
    session_ids: list[str]
    logged_in_at: list[float]


@dataclass(frozen=True, slots=True)
class Dismissal:
    session_id: str
    alert_id: str
    time: dt.datetime


@dataclass(slots=True)
class FoldResult:
    """Final rows of the touched sessions, and what changed for the schedule."""

    rows: dict[str, SessionRow] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    ended: set[str] = field(default_factory=set)
    dismissals: list[Dismissal] = field(default_factory=list)
    ignored: int = 0
    dismissals_ignored: int = 0


def fold_session_events(
    existing: dict[str, SessionRow],
    events: Iterable[tuple[int, SessionEvent]],
    now: dt.datetime,
    session_ttl: dt.timedelta,
) -> FoldResult:
    """Apply events (with their Kafka partition) in order to the current rows.

    Rules that make replays harmless: an event never rewinds a newer state
    (``last_event_at``); a logout leaves a tombstone so a late or replayed login of the
    same session stays ended; a login older than the session TTL is already expired.
    """
    result = FoldResult()
    rows = result.rows
    before_active = {sid for sid, row in existing.items() if row.active}
    for partition, ev in events:
        sid = ev.session_id
        row = rows.get(sid, existing.get(sid))
        t = ev.time
        if ev.kind is SessionEventKind.ALERT_DISMISSED:
            # Only the session's own user may dismiss its alert: a dismissal naming
            # someone else's session is ignored, never applied.
            owner = row is not None and (row.account_id, row.user_id) == (
                ev.account_id,
                ev.user_id,
            )
            if ev.alert_id is not None and row is not None and row.active and owner:
                result.dismissals.append(Dismissal(sid, ev.alert_id, t))
            else:
                result.ignored += 1
                result.dismissals_ignored += 1
            continue
        if row is not None and (row.account_id, row.user_id) != (ev.account_id, ev.user_id):
            log.warning(
                "session_owner_mismatch",
                session_id=sid,
                account_id=ev.account_id,
                user_id=ev.user_id,
            )
            result.ignored += 1
            continue
        if ev.kind is SessionEventKind.LOGOUT:
            if row is None:
                rows[sid] = SessionRow(
                    sid,
                    ev.account_id,
                    ev.user_id,
                    "0.0.0.0",  # noqa: S104  a tombstone has no address
                    t,
                    t,
                    partition,
                    ended_at=t,
                )
            elif row.active:
                if t >= row.logged_in_at:
                    rows[sid] = replace(row, ended_at=t, last_event_at=max(t, row.last_event_at))
                else:
                    result.ignored += 1
            elif row.ended_at is not None and t > row.ended_at:
                rows[sid] = replace(row, ended_at=t, last_event_at=max(t, row.last_event_at))
            else:
                result.ignored += 1
            continue
        # login or ip_changed; an ip_changed for an unknown session starts one.
        assert ev.ip is not None  # noqa: S101  guaranteed by the decoder
        ip = str(ev.ip)
        # The latest event says what the client is on now: no network in it clears the
        # signals, as a new IP replaces the old. A new access point on the same IP is a
        # changed row like a new IP, so it is saved and its memo forgotten.
        net = ev.network or _NO_NETWORK
        expired = t < now - session_ttl
        # An ended session re-opens only for an event newer than everything it has seen,
        # so a replay of out-of-order events (skewed clocks) ends in the same state.
        if row is None or (row.ended_at is not None and t > max(row.ended_at, row.last_event_at)):
            seq = row.alert_seq if row is not None else 0
            rows[sid] = SessionRow(
                sid,
                ev.account_id,
                ev.user_id,
                ip,
                t,
                t,
                partition,
                ended_at=t if expired else None,
                alert_seq=seq,
                bssid=net.bssid,
                switch_chassis=net.chassis_id,
                switch_port=net.port_id,
            )
        elif row.active and t >= row.last_event_at:
            rows[sid] = replace(
                row,
                ip=ip,
                last_event_at=t,
                partition=partition,
                bssid=net.bssid,
                switch_chassis=net.chassis_id,
                switch_port=net.port_id,
            )
        else:
            result.ignored += 1
    for sid, row in rows.items():
        if row.active and sid not in before_active:
            result.started.add(sid)
        elif not row.active and sid in before_active:
            result.ended.add(sid)
    return result


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
        each partition arrives as two arrays, so loading a million sessions costs a
        handful of array decodes in the driver rather than a record per session, and
        only one partition's arrays are in flight at a time. Must run in a transaction.
        """
        query = SQL["active_in_partitions"]
        async for r in conn.cursor(query, list(partitions), prefetch=1):
            yield PartitionSessions(r["kafka_partition"], r["ids"], r["logged_in_at"])

    async def expire(
        self, conn: asyncpg.Connection, partitions: Sequence[int], cutoff: dt.datetime
    ) -> list[str]:
        """End sessions with no event since ``cutoff``; returns their ids."""
        records = await conn.fetch(SQL["expire_sessions"], list(partitions), cutoff)
        return [r["session_id"] for r in records]

    async def purge_tombstones(self, conn: asyncpg.Connection, cutoff: dt.datetime) -> int:
        status: str = await conn.execute(SQL["purge_tombstones"], cutoff)
        return int(status.split()[-1])
