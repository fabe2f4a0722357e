"""Alert state and the events that announce it (docs/spec.md#alerts-topic).

Every transition is written with its outbox row on the caller's transaction, so an
alert that was decided is never lost between deciding and publishing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from e911d.config import Settings
from e911d.consumers.envelope import encode_event
from e911d.daemon.core.listing import ListLimit, listing
from e911d.daemon.core.model import (
    Location,
    Recommendation,
    ResolveReason,
    Verdict,
)
from e911d.daemon.store.alert_data import (
    RAISED,
    RESOLVED,
    AlertRaisedData,
    AlertResolvedData,
    RecommendationData,
    location_ref,
    optional_ref,
)
from e911d.daemon.store.db import load_queries

SQL = load_queries("alerts.sql")
DEFAULT_LIMIT = ListLimit()

# Fixed namespace: alert ids must be the same on every instance and after restarts.
ALERT_NAMESPACE = uuid.UUID("0c8f3d0e-5b0a-4f57-9a55-6c2f3d9e911d")


def alert_id_for(session_id: str, logged_in_at: dt.datetime, episode: int, fingerprint: str) -> str:
    """Deterministic for (session, fingerprint, episode), so redeliveries are recognisable.

    The login time is part of the session's identity: a session id reused after its
    tombstone was purged starts new episodes, never old ids. The instant counts, not
    how it is written: it is rendered in UTC, so an offset or a time zone (the
    process's, the database's) never changes an id.
    """
    at = logged_in_at.astimezone(dt.UTC).isoformat()
    name = f"{session_id}\x1f{at}\x1f{episode}\x1f{fingerprint}"
    return str(uuid.uuid5(ALERT_NAMESPACE, name))


def resolved_event_id(alert_id: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{alert_id}\x1fresolved"))


@dataclass(frozen=True, slots=True)
class SessionRef:
    session_id: str
    account_id: str
    user_id: str
    partition: int


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    partition: int
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """A raised alert as typed values; :meth:`event_data` is its wire form."""

    alert_id: str
    session: SessionRef
    fingerprint: str
    episode: int
    ip: str
    assigned_location: Location | None
    recommendation: Recommendation
    raised_at: dt.datetime
    # The IP groups that decided: kept in the alert history (not sent), so a report
    # can say which networks produce the most mismatches.
    ip_group_ids: tuple[str, ...] = ()

    def data(self, limit: ListLimit = DEFAULT_LIMIT) -> AlertRaisedData:
        """The ``e911.alert.raised`` data (docs/spec.md#alerts-topic), built only to be stored or
        sent; ``limit`` cuts the recommendation's list (:mod:`daemon.core.listing`)."""
        rec = self.recommendation
        listed = listing(rec.locations, limit)
        return AlertRaisedData(
            alert_id=self.alert_id,
            account_id=self.session.account_id,
            user_id=self.session.user_id,
            session_id=self.session.session_id,
            ip=self.ip,
            assigned_location=optional_ref(self.assigned_location),
            recommendation=RecommendationData(
                rec.kind,
                [location_ref(loc) for loc in listed.locations],
                listed.total,
                listed.truncated,
            ),
            matched_by=rec.matched_by,
            checked_at=self.raised_at.astimezone(dt.UTC),
        )

    def event_data(self, limit: ListLimit = DEFAULT_LIMIT) -> dict[str, Any]:
        """:meth:`data` as JSON values: the alert row's payload, and what subscribers get."""
        payload: dict[str, Any] = msgspec.to_builtins(self.data(limit))
        return payload


def raised_alert(
    session: SessionRef,
    ip: str,
    logged_in_at: dt.datetime,
    episode: int,
    verdict: Verdict,
    checked_at: dt.datetime,
) -> RaisedAlert:
    fingerprint = verdict.fingerprint
    recommendation = verdict.recommendation
    if fingerprint is None or recommendation is None:
        raise ValueError("only a mismatch raises an alert")
    alert_id = alert_id_for(session.session_id, logged_in_at, episode, fingerprint)
    return RaisedAlert(
        alert_id,
        session,
        fingerprint,
        episode,
        ip,
        verdict.assigned_location,
        recommendation,
        checked_at,
        verdict.matched_ip_groups,
    )


@dataclass(frozen=True, slots=True)
class ResolvedAlert:
    alert_id: str
    session: SessionRef
    reason: ResolveReason
    resolved_at: dt.datetime
    # Filled in from the stored row by AlertStore.apply, for how long it was open.
    raised_at: dt.datetime | None = None

    @property
    def open_seconds(self) -> float | None:
        if self.raised_at is None:
            return None
        return max(0.0, (self.resolved_at - self.raised_at).total_seconds())


class AlertStore:
    """The alerts and outbox tables; every call runs on the caller's transaction."""

    def __init__(self, topic: str, source: str, limit: ListLimit = DEFAULT_LIMIT) -> None:
        self.topic = topic
        self.source = source
        # How much of a recommendation an alert lists (E911_CHECKS__MAX_RECOMMENDED_LOCATIONS).
        self.limit = limit

    @classmethod
    def of(cls, settings: Settings) -> AlertStore:
        """The daemon's store: its topic and source, and alerts that list at most the
        configured number of locations, in at most half of the largest event e911d
        accepts (``E911_KAFKA__MAX_EVENT_BYTES``), so that an alert (whose other fields
        are bounded) fits any broker or subscriber that takes e911d's own inbound events
        (docs/spec.md#alerts-topic)."""
        limit = ListLimit(
            settings.checks.max_recommended_locations, settings.kafka.max_event_bytes // 2
        )
        return cls(settings.kafka.topics.alerts, settings.kafka.source, limit)

    def raised_event(self, alert: RaisedAlert, data: dict[str, Any] | None = None) -> OutboxEvent:
        value = encode_event(
            type_=RAISED,
            event_id=alert.alert_id,
            source=self.source,
            time=alert.raised_at,
            data=alert.event_data(self.limit) if data is None else data,
            subject=alert.session.session_id,
        )
        return OutboxEvent(
            alert.session.partition, self.topic, alert.session.user_id.encode(), value
        )

    def resolved_event(self, alert: ResolvedAlert) -> OutboxEvent:
        data = AlertResolvedData(
            alert_id=alert.alert_id,
            account_id=alert.session.account_id,
            user_id=alert.session.user_id,
            session_id=alert.session.session_id,
            reason=alert.reason,
            resolved_at=alert.resolved_at.astimezone(dt.UTC),
        )
        # The subject is in the stored value: what the outbox holds is what is published.
        value = encode_event(
            type_=RESOLVED,
            event_id=resolved_event_id(alert.alert_id),
            source=self.source,
            time=alert.resolved_at,
            data=data,
            subject=alert.session.session_id,
        )
        return OutboxEvent(
            alert.session.partition, self.topic, alert.session.user_id.encode(), value
        )

    async def apply(
        self,
        conn: asyncpg.Connection,
        resolved: Sequence[ResolvedAlert],
        raised: Sequence[RaisedAlert],
        *,
        touch: bool = True,
        rowwise: bool = False,
    ) -> list[ResolvedAlert]:
        """Resolutions first: the open-alert unique index allows one open per session.

        Returns the resolutions that took effect, each with its stored ``raised_at``:
        an alert already resolved by someone else (a dismissal, another check) gets no
        second event. With ``touch`` the sessions' rows are rewritten first, bumping
        their versions (migration 0011), so a check that read them before this decides
        them again; a caller that rewrote them already (the checks' compare-and-set,
        a session's end) passes False. Three statements at most, however many rows;
        ``rowwise``: one statement a row, as before (the benchmarks' baseline).
        """
        if touch and (resolved or raised):
            sessions = sorted(
                {a.session.session_id for a in resolved} | {a.session.session_id for a in raised}
            )
            await conn.execute(SQL["touch_sessions"], sessions)
        if resolved:
            done = {
                r["alert_id"]: r["raised_at"]
                for r in await conn.fetch(
                    SQL["resolve_alerts"],
                    [a.alert_id for a in resolved],
                    [a.resolved_at for a in resolved],
                    [str(a.reason) for a in resolved],
                )
            }
            resolved = [
                dataclasses.replace(a, raised_at=done[a.alert_id])
                for a in resolved
                if a.alert_id in done
            ]
        payloads = [a.event_data(self.limit) for a in raised]
        events = [self.resolved_event(a) for a in resolved] + [
            self.raised_event(a, payload) for a, payload in zip(raised, payloads, strict=True)
        ]
        if rowwise:
            await _apply_rowwise(conn, raised, payloads, events)
        elif events:
            await conn.execute(
                SQL["insert_transitions"],
                [a.alert_id for a in raised],
                [a.session.session_id for a in raised],
                [a.session.account_id for a in raised],
                [a.session.user_id for a in raised],
                [a.session.partition for a in raised],
                [a.fingerprint for a in raised],
                [a.episode for a in raised],
                payloads,
                [a.raised_at for a in raised],
                [_text(a.recommendation.matched_by) for a in raised],
                # Ids never hold control characters: the join is unambiguous.
                ["\x1f".join(a.ip_group_ids) for a in raised],
                [str(a.recommendation.kind) for a in raised],
                [e.partition for e in events],
                [e.topic for e in events],
                [e.key for e in events],
                [e.value for e in events],
            )
        return list(resolved)

    async def resolve_sessions(
        self,
        conn: asyncpg.Connection,
        session_ids: Sequence[str],
        reason: ResolveReason,
        at: dt.datetime,
    ) -> list[ResolvedAlert]:
        """Resolve whatever alert the given sessions have open (session end)."""
        if not session_ids:
            return []
        records = await conn.fetch(SQL["open_alerts_of_sessions"], list(session_ids))
        # Ending a session rewrote its row already (its version moved).
        return await self.apply(conn, [_resolved(r, reason, at) for r in records], [], touch=False)

    async def dismiss(
        self,
        conn: asyncpg.Connection,
        session_id: str,
        alert_id: str,
        at: dt.datetime,
    ) -> ResolvedAlert | None:
        """Resolve the alert if it is the session's open one; anything else is ignored."""
        record = await conn.fetchrow(SQL["open_alert_by_id"], alert_id, session_id)
        if record is None:
            return None
        done = await self.apply(conn, [_resolved(record, ResolveReason.DISMISSED, at)], [])
        return done[0] if done else None

    async def snoozed(
        self, conn: asyncpg.Connection, session_ids: Sequence[str], since: dt.datetime
    ) -> dict[str, frozenset[str]]:
        records = await conn.fetch(SQL["snoozed_fingerprints"], list(session_ids), since)
        out: dict[str, set[str]] = {}
        for r in records:
            out.setdefault(r["session_id"], set()).add(r["fingerprint"])
        return {k: frozenset(v) for k, v in out.items()}

    async def count_open(self, conn: asyncpg.Connection, partitions: Sequence[int]) -> int:
        value: int = await conn.fetchval(SQL["count_open"], list(partitions))
        return value

    async def purge(self, conn: asyncpg.Connection, cutoff: dt.datetime) -> int:
        status: str = await conn.execute(SQL["purge_resolved"], cutoff)
        return int(status.split()[-1])


async def _apply_rowwise(
    conn: asyncpg.Connection,
    raised: Sequence[RaisedAlert],
    payloads: Sequence[dict[str, Any]],
    events: Sequence[OutboxEvent],
) -> None:
    """Today's design: a statement per alert and per event (pipelined)."""
    if raised:
        await conn.executemany(
            SQL["insert_alert"],
            [
                (
                    a.alert_id,
                    a.session.session_id,
                    a.session.account_id,
                    a.session.user_id,
                    a.session.partition,
                    a.fingerprint,
                    a.episode,
                    payload,
                    a.raised_at,
                    _text(a.recommendation.matched_by),
                    list(a.ip_group_ids),
                    str(a.recommendation.kind),
                )
                for a, payload in zip(raised, payloads, strict=True)
            ],
        )
    if events:
        await conn.executemany(
            SQL["enqueue"], [(e.partition, e.topic, e.key, e.value) for e in events]
        )


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def _resolved(r: asyncpg.Record, reason: ResolveReason, at: dt.datetime) -> ResolvedAlert:
    ref = SessionRef(r["session_id"], r["account_id"], r["user_id"], r["kafka_partition"])
    return ResolvedAlert(r["alert_id"], ref, reason, at)
