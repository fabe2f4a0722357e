"""How an explanation is shown: text for a person at a terminal, JSON for tools.

The renderers only read an :class:`~daemon.commands.explain.explanation.Explanation`, never the
database or the rules, so what they print is exactly what was built and their
wording can change without touching the reasoning. The ``--json`` shape is
documented (docs/explain.md) and scripts depend on it: keys are only ever added.

Each command that prints a document has a ``render.py``: the same kind of module in
parallel places, so the same name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from typing import Any

from e911d.consumers.envelope import format_time
from e911d.daemon.commands.explain.explanation import Explanation, SignalRow, on_off
from e911d.daemon.core.ip import IPAddress
from e911d.daemon.core.model import ConfirmedNetwork, GeoEvidence, Location, MatchedBy


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else format_time(t)


def _loc_json(loc: Location) -> dict[str, str]:
    return {"location_id": loc.location_id, "name": loc.name}


def _same_ip(a: str, b: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(a) == b
    except ValueError:
        return False


def _signal_json(row: SignalRow) -> dict[str, Any]:
    return {
        "signal": str(row.signal),
        "value": row.value,
        "matched": row.matched,
        "key": row.key or None,
        "ip_group_ids": list(row.ip_group_ids),
        "location_ids": [loc.location_id for loc in row.locations],
        "locating": row.locating,
        "decided": row.decided,
    }


def _geo_json(geo: GeoEvidence | None) -> dict[str, Any] | None:
    if geo is None:
        return None
    return {
        "lat": geo.lat,
        "lon": geo.lon,
        "accuracy_km": geo.accuracy_km,
        "distance_km": geo.distance_km,
        "limit_km": geo.limit_km,
    }


def to_json(ex: Explanation) -> dict[str, Any]:
    """The documented ``--json`` shape (docs/explain.md); keys are only ever added."""
    rec = ex.verdict.recommendation
    return {
        "account": {
            "account_id": ex.account_id,
            "known": ex.account is not None,
            "e911_recommendations": ex.account.e911_recommendations if ex.account else None,
        },
        "user": {
            "user_id": ex.user_id,
            "known": ex.user is not None,
            "e911_recommendations": ex.user.e911_recommendations if ex.user else None,
            "e911_location_id": ex.user.e911_location_id if ex.user else None,
        },
        "effective_setting": {"enabled": ex.effective.enabled, "reason": ex.effective.reason},
        "assigned_location": {
            "status": ex.assigned.status,
            "location_id": ex.assigned.location_id,
            "name": ex.assigned.name,
            "description": ex.assigned.description,
        },
        "ip": {
            "input": ex.ip.text,
            "normalized": str(ex.ip.address),
            "ipv4_mapped": ex.ip.ipv4_mapped,
        },
        "containing_groups": [
            {
                "ip_group_id": g.ip_group_id,
                "name": g.name,
                "location_id": g.location_id,
                "location_name": g.location_name,
                "network": str(g.network),
                "prefix_len": g.prefix_len,
                "address": g.address_item,
                "counted": g.counted,
                "ignored_reason": g.ignored_reason,
                "winner": g.winner,
                "locating": g.locating,
            }
            for g in ex.containing_groups
        ],
        "winner": None
        if ex.winner is None
        else {
            "prefix_len": ex.winner.prefix_len,
            "network": str(ex.winner.network),
            "ip_group_ids": list(ex.winner.ip_group_ids),
            "locations": [_loc_json(loc) for loc in ex.winner.locations],
            "locating": ex.winner.locating,
        },
        "outcome": str(ex.outcome),
        "recommendation": None
        if rec is None
        else {"kind": str(rec.kind), "locations": [_loc_json(loc) for loc in rec.locations]},
        "fingerprint": ex.fingerprint,
        "explanation": ex.sentence,
        "sessions": [
            {
                "session_id": s.session_id,
                "ip": s.ip,
                "same_ip": _same_ip(s.ip, ex.ip.address),
                "logged_in_at": _iso(s.logged_in_at),
                "open_alert": None
                if s.open_alert_id is None
                else {
                    "alert_id": s.open_alert_id,
                    "fingerprint": s.open_alert_fingerprint,
                    "raised_at": _iso(s.open_alert_raised_at),
                    "same_fingerprint": ex.fingerprint is not None
                    and s.open_alert_fingerprint == ex.fingerprint,
                },
                "snoozed_until": _iso(s.snoozed_until(ex.fingerprint))
                if ex.fingerprint is not None
                else None,
            }
            for s in ex.sessions
        ],
        "signals": [_signal_json(row) for row in ex.signals],
        "matched_by": None if ex.verdict.matched_by is None else str(ex.verdict.matched_by),
        "geo": _geo_json(ex.verdict.geo),
        "confirmed": None
        if ex.verdict.confirmed is None
        else _confirmed_json(ex.verdict.confirmed),
        "confirmed_networks": len(ex.confirmed),
    }


def _confirmed_json(entry: ConfirmedNetwork | None) -> dict[str, Any] | None:
    """The user's entry that decided (docs/spec.md#networks-a-user-confirmed)."""
    if entry is None:
        return None
    return {
        "network": {"kind": str(entry.key.kind), "key": entry.key.display},
        "location_id": entry.location_id,
        "first_confirmed_at": _iso(entry.first_confirmed_at),
        "last_confirmed_at": _iso(entry.last_confirmed_at),
    }


def _confirmed_text(ex: Explanation) -> str:
    entry = ex.verdict.confirmed
    n = len(ex.confirmed)
    if entry is None:
        if not n:
            return "Confirmed    the user has confirmed no network"
        return f"Confirmed    {n} network(s) of this user; none decided this session"
    rec = ex.verdict.recommendation
    loc = rec.locations[0] if rec is not None and rec.locations else ex.verdict.assigned_location
    where = entry.location_id if loc is None else _loc_text(loc)
    last = "" if entry.last_confirmed_at is None else f", last {_iso(entry.last_confirmed_at)}"
    return (
        f"Confirmed    the user confirmed {where} on {entry.key.kind} {entry.key.display}"
        f"{last}  <- decided"
    )


def render_json(ex: Explanation) -> str:
    return json.dumps(to_json(ex), indent=2)


def _loc_text(loc: Location) -> str:
    return f"{loc.name} ({loc.location_id})"


def _signal_text(row: SignalRow) -> str:
    line = f"  {row.signal:<12} {row.value}  "
    if not row.matched:
        line += "matched nothing"
    else:
        line += f"matched {row.key}: {', '.join(row.ip_group_ids)}"
        if row.locations:
            line += " -> " + ", ".join(_loc_text(loc) for loc in row.locations)
        if not row.locating:
            line += " (non-locating)"
    return line + ("  <- decided" if row.decided else "")


def _geo_text(geo: GeoEvidence) -> str:
    away = "unknown" if geo.distance_km is None else f"{geo.distance_km:.0f} km"
    return (
        f"Geolocation  the IP is at {geo.lat:.4f}, {geo.lon:.4f} (accuracy {geo.accuracy_km:.0f}"
        f" km): {away} from the assigned location, {geo.limit_km:.0f} km allowed"
    )


def render_text(ex: Explanation) -> str:
    """For a person at a terminal: one fact per line, the reasoning last."""
    lines: list[str] = []
    add = lines.append
    if ex.account is None:
        add(f"Account      {ex.account_id}: not in the directory")
    else:
        toggle = on_off(ex.account.e911_recommendations)
        add(f"Account      {ex.account_id}: account toggle {toggle}")
    if ex.user is None:
        add(f"User         {ex.user_id}: not in the directory")
    else:
        lid = ex.user.e911_location_id
        add(
            f"User         {ex.user_id}: own toggle {on_off(ex.user.e911_recommendations)}, "
            f"assigned location id {lid if lid is not None else 'none'}"
        )
    add(f"Setting      {ex.effective.reason}")
    add(f"Assigned     {ex.assigned.description}")
    ip_line = f"IP           {ex.ip.address}"
    if ex.ip.ipv4_mapped:
        ip_line += f" (given as {ex.ip.text}: an IPv4-mapped IPv6 address, checked as IPv4)"
    add(ip_line)
    add("")
    add("Signals (highest precedence first; the first that matches anything decides):")
    for row in ex.signals:
        add(_signal_text(row))
    add("")
    if not ex.containing_groups:
        add(f"IP groups    none of the account's IP groups contains {ex.ip.address}")
    else:
        add(f"IP groups containing {ex.ip.address} (most specific first):")
        for g in ex.containing_groups:
            target = (
                "non-locating"
                if not g.locating
                else f"{g.location_id} ({g.location_name})"
                if g.location_name is not None
                else (g.location_id or "no location")
            )
            mark = "  <- winner" if g.winner else ""
            add(f"  /{g.prefix_len:<3} {g.network}  {g.ip_group_id} ({g.name}) -> {target}{mark}")
            if g.address_item is not None and g.address_item != str(g.network):
                add(f"        from address entry {g.address_item}")
            if g.ignored_reason is not None:
                add(f"        {g.ignored_reason}")
    if ex.winner is None:
        add("Winner       none: no counted IP group contains the IP")
    else:
        w = ex.winner
        tie = f" (a tie of {len(w.ip_group_ids)} groups)" if len(w.ip_group_ids) > 1 else ""
        locs = ", ".join(_loc_text(loc) for loc in w.locations)
        if not w.locating:
            locs = "non-locating" + (f" (tied with {locs})" if locs else "")
        line = f"Winner       /{w.prefix_len} {w.network} -> {locs}{tie}"
        decided = ex.decided
        if decided is not None and decided.signal is not MatchedBy.IP:
            line += f"  (not used: the {decided.signal} signal decided)"
        add(line)
    add(_confirmed_text(ex))
    add("")
    add(f"Outcome      {ex.outcome}")
    if ex.verdict.matched_by is not None:
        add(f"Matched by   {ex.verdict.matched_by}")
    rec = ex.verdict.recommendation
    if rec is not None:
        add(f"Recommended  {rec.kind}: " + ", ".join(_loc_text(loc) for loc in rec.locations))
    if ex.fingerprint is not None:
        add(f"Fingerprint  {ex.fingerprint}")
    if ex.verdict.geo is not None:
        add(_geo_text(ex.verdict.geo))
    add(f"Why          {ex.sentence}")
    add("")
    if not ex.sessions:
        add("Sessions     no active session")
    else:
        add("Active sessions:")
        for s in ex.sessions:
            here = " (this IP)" if _same_ip(s.ip, ex.ip.address) else ""
            line = f"  {s.session_id}  ip {s.ip}{here}  logged in {_iso(s.logged_in_at)}"
            if s.open_alert_id is None:
                line += "  no open alert"
            else:
                same = (
                    "same fingerprint as above"
                    if ex.fingerprint is not None and s.open_alert_fingerprint == ex.fingerprint
                    else f"fingerprint {s.open_alert_fingerprint}"
                )
                line += f"  open alert {s.open_alert_id} ({same})"
            until = s.snoozed_until(ex.fingerprint) if ex.fingerprint is not None else None
            if until is not None:
                line += f"  snoozed until {_iso(until)} (the user dismissed this mismatch)"
            add(line)
    return "\n".join(lines)
