"""What a subscriber of the alerts topic may rely on, checked on what it received
(docs/spec.md#alerts-topic): per session, after dropping redeliveries by their
CloudEvents id, a ``raised`` comes while no alert of the session is open, and a
``resolved`` names the alert that is open. So a ``raised`` precedes its ``resolved``,
and a ``superseded`` resolution precedes the ``raised`` that replaces it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from e911d.daemon.store.alerts import resolved_event_id
from tests.support import Received

RAISED = "e911.alert.raised"
RESOLVED = "e911.alert.resolved"


@dataclass
class Replay:
    """A subscriber's view: the alert open per session, and what broke the order."""

    open: dict[str, str | None] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    events: int = 0  # distinct events applied
    duplicates: int = 0  # redeliveries dropped by id
    raised: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)


def replay(messages: Iterable[Received]) -> Replay:
    """Apply the topic's events in order, as a subscriber that drops duplicates does."""
    out = Replay()
    seen: set[str] = set()
    for m in messages:
        if m.value is None:
            continue
        event = m.event
        if event["id"] in seen:
            out.duplicates += 1
            continue
        seen.add(event["id"])
        out.events += 1
        data = event["data"]
        sid, alert_id = data["session_id"], data["alert_id"]
        current = out.open.get(sid)
        if event["type"] == RAISED:
            if current is not None:
                out.violations.append(f"{sid}: {alert_id} raised while {current} is open")
            if alert_id in out.raised:
                out.violations.append(f"{sid}: {alert_id} raised twice under two event ids")
            out.raised.add(alert_id)
            out.open[sid] = alert_id
        elif event["type"] == RESOLVED:
            if current != alert_id:
                out.violations.append(
                    f"{sid}: {alert_id} resolved ({data['reason']}) while "
                    f"{'nothing' if current is None else current} is open"
                )
            out.resolved.add(alert_id)
            if current == alert_id:
                out.open[sid] = None
    return out


async def lost_events(conn: asyncpg.Connection, seen: Replay) -> list[str]:
    """Alert events the database decided that the topic does not hold; and alerts open
    in the database that the topic's subscriber does not see open."""
    missing: list[str] = []
    for r in await conn.fetch("SELECT alert_id, session_id, resolved_at FROM alerts"):
        if r["alert_id"] not in seen.raised:
            missing.append(f"raised {r['alert_id']} of {r['session_id']}")
        if r["resolved_at"] is not None and r["alert_id"] not in seen.resolved:
            missing.append(f"resolved {r['alert_id']} of {r['session_id']}")
        if r["resolved_at"] is None and seen.open.get(r["session_id"]) != r["alert_id"]:
            missing.append(f"{r['alert_id']} of {r['session_id']} open, not on the topic")
    return missing


def ids_by_alert(messages: Iterable[Received]) -> Counter[tuple[str, str]]:
    """How many times each (event type, alert id) arrived; the event id of each must be
    the alert's deterministic one (checked here)."""
    counts: Counter[tuple[str, str]] = Counter()
    for m in messages:
        if m.value is None:
            continue
        alert_id = m.data["alert_id"]
        expected = alert_id if m.type == RAISED else resolved_event_id(alert_id)
        assert m.event["id"] == expected, (m.type, alert_id, m.event["id"])
        counts[(m.type, alert_id)] += 1
    return counts
