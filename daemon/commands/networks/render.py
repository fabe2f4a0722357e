"""``e911d report networks`` as text (a terminal), JSON (machines) and CSV (a
spreadsheet): the same figures from one :class:`NetworksReport`, nothing computed here
beyond formatting."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any, Final

from e911d.daemon.commands.networks.agreement import Confirmation, NetworkReport, NetworksReport

LEGEND: Final = (
    "Users: the most distinct users seen on the network on one UTC day. Sessions: "
    "distinct sessions per UTC day, summed over the days. Confirmed: the locations "
    "users confirmed on the network, with their share of those users; agreement is "
    "the share of the most chosen one. 'configured since': an IP group now matches it."
)


def retention_note(report: NetworksReport) -> str | None:
    if not report.beyond_retention:
        return None
    return (
        "the window is longer than the alert retention: older days have been purged, "
        "so the figures cover only the retention"
    )


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def _location(c: Confirmation) -> str:
    return f"{c.location_id} (deleted)" if c.name is None else f"{c.location_id} ({c.name})"


def _confirmed(n: NetworkReport) -> str:
    return ", ".join(
        f"{_location(c)} {c.users}/{n.confirmed_users} {_percent(n.share(c))}"
        for c in n.confirmations
    )


def render_text(report: NetworksReport) -> str:
    lines = [
        f"Networks nobody configured  {report.first_day:%Y-%m-%d} .. {report.last_day:%Y-%m-%d}"
        f" (UTC days), at least {report.min_users} user(s)",
        f"generated {report.generated_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
    ]
    if (note := retention_note(report)) is not None:
        lines.append(f"note: {note}")
    account: str | None = None
    for n in sorted(report.networks, key=lambda n: n.account_id):
        if n.account_id != account:
            account = n.account_id
            lines += ["", f"Account {account}"]
        first = f"  {n.key.display}  ({n.key.kind})  users {n.users}  sessions {n.sessions}"
        first += f"  days {n.days}"
        if n.configured_now:
            first += "  configured since"
        lines.append(first)
        if n.confirmations:
            lines.append(f"    confirmed: {_confirmed(n)}  agreement {_percent(n.agreement)}")
        else:
            lines.append("    confirmed: nobody")
    if not report.networks:
        lines += ["", "(no networks)"]
    lines += ["", LEGEND]
    return "\n".join(lines) + "\n"


def _network_json(n: NetworkReport) -> dict[str, Any]:
    return {
        "account_id": n.account_id,
        "kind": str(n.key.kind),
        "network": n.key.display,
        "users": n.users,
        "sessions": n.sessions,
        "days": n.days,
        "first_day": n.first_day.isoformat(),
        "last_day": n.last_day.isoformat(),
        "configured_now": n.configured_now,
        "confirmed_users": n.confirmed_users,
        "agreement": n.agreement,
        "confirmations": [
            {
                "location_id": c.location_id,
                "name": c.name,
                "users": c.users,
                "share": n.share(c),
            }
            for c in n.confirmations
        ],
    }


def render_json(report: NetworksReport) -> str:
    data: dict[str, Any] = {
        "generated_at": report.generated_at.astimezone(dt.UTC).isoformat(),
        "first_day": report.first_day.isoformat(),
        "last_day": report.last_day.isoformat(),
        "min_users": report.min_users,
    }
    if (note := retention_note(report)) is not None:
        data["retention_note"] = note
    data["networks"] = [_network_json(n) for n in report.networks]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


CSV_COLUMNS: Final = (
    "account_id",
    "kind",
    "network",
    "users",
    "sessions",
    "days",
    "first_day",
    "last_day",
    "configured_now",
    "confirmed_users",
    "agreement",
    "confirmations",
)


def render_csv(report: NetworksReport) -> str:
    """One row per network, busiest first; ``confirmations`` is ``location=users``
    pairs joined by ``; `` (the csv module quotes what needs it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for n in report.networks:
        writer.writerow(
            [
                n.account_id,
                str(n.key.kind),
                n.key.display,
                n.users,
                n.sessions,
                n.days,
                n.first_day.isoformat(),
                n.last_day.isoformat(),
                "true" if n.configured_now else "false",
                n.confirmed_users,
                "" if n.agreement is None else repr(round(n.agreement, 3)),
                "; ".join(f"{c.location_id}={c.users}" for c in n.confirmations),
            ]
        )
    return out.getvalue()


RENDERERS: Final = {"text": render_text, "json": render_json, "csv": render_csv}
