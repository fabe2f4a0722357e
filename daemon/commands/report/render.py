"""The report as text (a terminal), JSON (machines) and CSV (a spreadsheet).

The three show the same figures from one :class:`Report`; nothing is computed here
beyond formatting, so a format can change without touching a definition.

Each command that prints a document has a ``render.py``: the same kind of module in
parallel places, so the same name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any, Final

from e911d.daemon.commands.report.figures import REASONS, AccountReport, GroupCount, Report

NO_GROUP: Final = "(no network matched)"
LEGEND: Final = (
    "Sessions checked counts sessions checked on any UTC day from the window's first day "
    "(the history keeps days, not times). Time to fix: raise to location_updated, "
    "median and p90 by linear interpolation (percentile_cont). Dismissal rate: "
    "dismissed / raised in the window."
)


_MIN_LABEL: Final = 28


def human_duration(seconds: float | None) -> str:
    """``45s``, ``4m 30s``, ``2h 05m``, ``3d 04h``: the two largest units, rounded to
    the second, which is what an administrator compares."""
    if seconds is None:
        return "-"
    s = round(seconds)
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _since(seconds: float) -> str:
    s = int(seconds)
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        n, s = divmod(s, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


def retention_note(report: Report) -> str | None:
    if not report.beyond_retention:
        return None
    return (
        f"the window ({_since(report.window.since.total_seconds())}) is longer than the "
        f"alert retention ({_since(report.retention.total_seconds())}): older history has "
        "been purged, so the figures cover only the retention"
    )


def _group_label(group: GroupCount) -> str:
    return group.ip_group_id if group.name is None else f"{group.ip_group_id} {group.name}"


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _block(a: AccountReport, day_start: dt.datetime, *, total: bool = False) -> list[str]:
    title = "Total (all accounts)" if total else f"Account {a.account_id}"
    if not total and not a.in_directory:
        title += "  (not in the directory)"
    rows: list[tuple[str, object]] = [
        ("  Sessions checked", f"{a.sessions_checked}  (since {day_start:%Y-%m-%d} UTC)"),
        ("  Users mis-located now", f"{a.users_mislocated_now}  (open alerts: {a.open_alerts})"),
        ("  Alerts raised", a.alerts_raised),
        ("  Resolved", ""),
        *((f"    {reason}", n) for reason, n in a.resolved),
        ("  Time to fix, median", human_duration(a.time_to_fix_median_seconds)),
        ("  Time to fix, p90", f"{human_duration(a.time_to_fix_p90_seconds)}  ({a.fixes} fixes)"),
        ("  Dismissals", f"{a.dismissals}  (rate {_percent(a.dismissal_rate)})"),
    ]
    if not total:
        groups: list[tuple[str, object]] = [
            (f"    {_group_label(g)}", g.alerts) for g in a.top_groups
        ]
        if a.no_group:
            groups.append((f"    {NO_GROUP}", a.no_group))
        rows += [("  Groups with most mismatches", ""), *(groups or [("    (none)", "")])]
    # Values line up in one column per block, however long a group's name is.
    width = max(_MIN_LABEL, *(len(label) + 2 for label, _ in rows))
    return [title, *(f"{label:<{width}}{value}".rstrip() for label, value in rows)]


def render_text(report: Report) -> str:
    w = report.window
    lines = [
        f"E911 report  {_stamp(w.start)} .. {_stamp(w.until)}  ({_since(w.since.total_seconds())})",
        f"generated {_stamp(report.generated_at)}",
    ]
    if (note := retention_note(report)) is not None:
        lines.append(f"note: {note}")
    for a in report.accounts:
        lines += ["", *_block(a, w.day_start)]
    if not report.accounts:
        lines += ["", "(no accounts)"]
    lines += ["", *_block(report.total, w.day_start, total=True), "", LEGEND]
    return "\n".join(lines) + "\n"


def _account_json(a: AccountReport) -> dict[str, Any]:
    return {
        "account_id": a.account_id,
        "in_directory": a.in_directory,
        "sessions_checked": a.sessions_checked,
        "users_mislocated_now": a.users_mislocated_now,
        "open_alerts": a.open_alerts,
        "alerts_raised": a.alerts_raised,
        "resolved": dict(a.resolved),
        "fixes": a.fixes,
        "time_to_fix_median_seconds": a.time_to_fix_median_seconds,
        "time_to_fix_p90_seconds": a.time_to_fix_p90_seconds,
        "dismissals": a.dismissals,
        "dismissal_rate": a.dismissal_rate,
        "top_groups": [
            {"ip_group_id": g.ip_group_id, "name": g.name, "alerts": g.alerts} for g in a.top_groups
        ],
        "no_group": a.no_group,
    }


def render_json(report: Report) -> str:
    w = report.window
    data: dict[str, Any] = {
        "generated_at": report.generated_at.astimezone(dt.UTC).isoformat(),
        "window": {
            "since": w.start.astimezone(dt.UTC).isoformat(),
            "until": w.until.astimezone(dt.UTC).isoformat(),
            "seconds": w.since.total_seconds(),
            "sessions_checked_since": w.day_start.isoformat(),
        },
        "retention_seconds": report.retention.total_seconds(),
    }
    if (note := retention_note(report)) is not None:
        data["retention_note"] = note
    data["accounts"] = [_account_json(a) for a in report.accounts]
    total = _account_json(report.total)
    for key in ("account_id", "in_directory", "top_groups"):
        del total[key]
    data["total"] = total
    return json.dumps(data, indent=2) + "\n"


CSV_COLUMNS: Final = (
    "account_id",
    "sessions_checked",
    "users_mislocated_now",
    "open_alerts",
    "alerts_raised",
    *(f"resolved_{r}" for r in REASONS),
    "time_to_fix_median_seconds",
    "time_to_fix_p90_seconds",
    "dismissals",
    "dismissal_rate",
    "top_groups",
)


def _cell(value: float | None) -> str:
    return "" if value is None else repr(round(value, 3))


def render_csv(report: Report) -> str:
    """One row per account under a fixed header; the csv module quotes commas, quotes
    and newlines in group names so a spreadsheet loads it as written."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for a in report.accounts:
        groups = [f"{_group_label(g)}={g.alerts}" for g in a.top_groups]
        if a.no_group:
            groups.append(f"{NO_GROUP}={a.no_group}")
        writer.writerow(
            [
                a.account_id,
                a.sessions_checked,
                a.users_mislocated_now,
                a.open_alerts,
                a.alerts_raised,
                *(a.resolved_count(r) for r in REASONS),
                _cell(a.time_to_fix_median_seconds),
                _cell(a.time_to_fix_p90_seconds),
                a.dismissals,
                _cell(a.dismissal_rate),
                "; ".join(groups),
            ]
        )
    return out.getvalue()


RENDERERS: Final = {"text": render_text, "json": render_json, "csv": render_csv}
