"""What ``e911d directory confirmed`` prints: a table for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from e911d.daemon.store.confirmed_networks import ListedEntry


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _expires(item: ListedEntry, ttl: dt.timedelta) -> dt.datetime | None:
    last = item.entry.last_confirmed_at
    return None if last is None else last + ttl


def entry_json(item: ListedEntry, ttl: dt.timedelta) -> dict[str, Any]:
    e = item.entry
    return {
        "account_id": e.account_id,
        "user_id": e.user_id,
        "network": {"kind": str(e.key.kind), "key": e.key.display},
        "location_id": e.location_id,
        "location_name": item.location_name,
        "first_confirmed_at": _iso(e.first_confirmed_at),
        "last_confirmed_at": _iso(e.last_confirmed_at),
        "expires_at": _iso(_expires(item, ttl)),
    }


def render_json(
    entries: Sequence[ListedEntry], ttl: dt.timedelta, forgotten: int | None = None
) -> str:
    doc: dict[str, Any] = {"entries": [entry_json(i, ttl) for i in entries]}
    if forgotten is not None:
        doc = {"forgotten": forgotten, **doc}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _day(when: dt.datetime | None) -> str:
    return "-" if when is None else when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def render_text(
    entries: Sequence[ListedEntry], ttl: dt.timedelta, forgotten: int | None = None
) -> str:
    """One line per entry under a header; what was forgotten, if anything, first."""
    lines: list[str] = []
    if forgotten is not None:
        lines.append(f"forgot {forgotten} entr{'y' if forgotten == 1 else 'ies'}")
    if not entries:
        if forgotten is None:
            lines.append("no confirmed networks")
        return "\n".join(lines) + "\n"
    header = ("ACCOUNT", "USER", "NETWORK", "LOCATION", "LAST CONFIRMED (UTC)", "EXPIRES (UTC)")
    rows = [header]
    for item in entries:
        e = item.entry
        where = (
            e.location_id
            if item.location_name is None
            else f"{e.location_id} ({item.location_name})"
        )
        rows.append(
            (
                e.account_id,
                e.user_id,
                f"{e.key.kind} {e.key.display}",
                where,
                _day(e.last_confirmed_at),
                _day(_expires(item, ttl)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"
