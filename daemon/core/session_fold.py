"""Folding a batch of session events into session rows: pure, so that idempotence
(a replayed topic gives the same final state) is tested with plain values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from e911d.daemon.core.events import SessionEvent, SessionEventKind
from e911d.daemon.core.network import NetworkSignals

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
    # What the client last reported about its network, normalised (daemon.core.network);
    # None: nothing. A check reads them with the IP (docs/spec.md#network-signals).
    bssid: str | None = None
    switch_chassis: str | None = None
    switch_port: str | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None


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
    # Events naming a known session with another account or user: ignored, and
    # logged by the caller (this module does no I/O).
    owner_mismatches: list[SessionEvent] = field(default_factory=list)


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
            result.owner_mismatches.append(ev)
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
