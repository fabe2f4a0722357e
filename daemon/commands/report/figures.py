"""The report's values and the arithmetic on them, with no I/O.

Everything a figure needs arrives here as plain rows already filtered by SQL
(account, window), so the definitions that are easy to get subtly wrong — the
percentile, the rate, the duration syntax — are tested with literals.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from e911d.daemon.core.model import ResolveReason

REASONS: Final[tuple[str, ...]] = tuple(r.value for r in ResolveReason)
"""Every resolve reason, in the model's order: a report lists them all (zeros too), so
the CSV's columns do not depend on what happened."""

MAX_SINCE: Final = dt.timedelta(days=3650)
_UNITS: Final = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART: Final = re.compile(r"(\d+)([wdhms])")


class BadDuration(ValueError):
    """A --since the command refuses; the message names the value and the syntax."""


def parse_duration(text: str) -> dt.timedelta:
    """``7d``, ``24h``, ``90m``, ``3600s``, ``2w`` and concatenations (``1d12h``).

    Strict on purpose: a report whose window silently differs from what was typed is
    evidence of the wrong thing.
    """
    value = text.strip().lower()
    parts = _PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise BadDuration(
            f"{text[:40]!r} is not a duration: use a number and a unit (w, d, h, m, s), "
            "e.g. 7d, 24h, 90m, 1d12h"
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise BadDuration(f"{text[:40]!r}: the window must be longer than zero")
    if seconds > MAX_SINCE.total_seconds():
        raise BadDuration(f"{text[:40]!r}: the window may be at most {MAX_SINCE.days}d")
    return dt.timedelta(seconds=seconds)


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's ``percentile_cont``:
    sorted v[0..n-1], position p = fraction·(n-1), result v[⌊p⌋] + (p-⌊p⌋)·(v[⌈p⌉]-v[⌊p⌋]).
    None for no values (no fix is not a fix time of zero)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} outside [0, 1]")
    ordered = sorted(values)
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


@dataclass(frozen=True, slots=True)
class Window:
    """``[until - since, until]``; sessions checked use the UTC day of ``start``."""

    since: dt.timedelta
    until: dt.datetime

    @property
    def start(self) -> dt.datetime:
        return self.until - self.since

    @property
    def day_start(self) -> dt.datetime:
        """The start rounded down to its UTC midnight: checked_sessions knows days only."""
        start = self.start.astimezone(dt.UTC)
        return start.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class GroupCount:
    """Alerts raised in the window that this IP group decided."""

    ip_group_id: str
    name: str | None  # None: the group no longer exists
    alerts: int


@dataclass(frozen=True, slots=True)
class AccountRows:
    """What SQL returns for one account, before any arithmetic."""

    account_id: str
    in_directory: bool = True
    sessions_checked: int = 0
    users_mislocated_now: int = 0
    open_alerts: int = 0
    alerts_raised: int = 0
    resolved: Mapping[str, int] | None = None
    fix_seconds: Sequence[float] = ()
    top_groups: Sequence[GroupCount] = ()
    no_group: int = 0


@dataclass(frozen=True, slots=True)
class AccountReport:
    account_id: str
    in_directory: bool
    sessions_checked: int
    users_mislocated_now: int
    open_alerts: int
    alerts_raised: int
    resolved: tuple[tuple[str, int], ...]  # every reason of REASONS, in that order
    fixes: int  # alerts resolved location_updated in the window
    time_to_fix_median_seconds: float | None
    time_to_fix_p90_seconds: float | None
    dismissals: int
    dismissal_rate: float | None  # None when nothing was raised
    top_groups: tuple[GroupCount, ...]
    no_group: int  # raised alerts no IP group decided: "(no network matched)"
    fix_seconds: tuple[float, ...]  # kept for the total's percentiles, not shown

    def resolved_count(self, reason: str) -> int:
        return dict(self.resolved)[reason]


def _rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def build_account(rows: AccountRows) -> AccountReport:
    resolved = dict.fromkeys(REASONS, 0)
    for reason, n in (rows.resolved or {}).items():
        # A reason this version does not know (a newer daemon wrote it) still counts.
        resolved[reason] = resolved.get(reason, 0) + n
    fixes = tuple(sorted(rows.fix_seconds))
    dismissals = resolved[ResolveReason.DISMISSED.value]
    return AccountReport(
        account_id=rows.account_id,
        in_directory=rows.in_directory,
        sessions_checked=rows.sessions_checked,
        users_mislocated_now=rows.users_mislocated_now,
        open_alerts=rows.open_alerts,
        alerts_raised=rows.alerts_raised,
        resolved=tuple(resolved.items()),
        fixes=len(fixes),
        time_to_fix_median_seconds=percentile(fixes, 0.5),
        time_to_fix_p90_seconds=percentile(fixes, 0.9),
        dismissals=dismissals,
        dismissal_rate=_rate(dismissals, rows.alerts_raised),
        top_groups=tuple(rows.top_groups),
        no_group=rows.no_group,
        fix_seconds=fixes,
    )


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: dt.datetime
    window: Window
    retention: dt.timedelta
    accounts: tuple[AccountReport, ...]
    total: AccountReport

    @property
    def beyond_retention(self) -> bool:
        """History older than the retention is purged: a longer window covers less."""
        return self.window.since > self.retention


TOTAL_ID: Final = "(all accounts)"


def build_total(accounts: Sequence[AccountReport]) -> AccountReport:
    """Sums across accounts; the fix times are percentiles of every account's fixes
    together (not an average of medians). Groups belong to one account, so the total
    has no top groups."""
    resolved: dict[str, int] = {}
    for report in accounts:
        for reason, n in report.resolved:
            resolved[reason] = resolved.get(reason, 0) + n
    return build_account(
        AccountRows(
            account_id=TOTAL_ID,
            sessions_checked=sum(a.sessions_checked for a in accounts),
            users_mislocated_now=sum(a.users_mislocated_now for a in accounts),
            open_alerts=sum(a.open_alerts for a in accounts),
            alerts_raised=sum(a.alerts_raised for a in accounts),
            resolved=resolved,
            fix_seconds=[s for a in accounts for s in a.fix_seconds],
            no_group=sum(a.no_group for a in accounts),
        )
    )


def build_report(
    generated_at: dt.datetime,
    window: Window,
    retention: dt.timedelta,
    rows: Iterable[AccountRows],
) -> Report:
    accounts = tuple(build_account(r) for r in sorted(rows, key=lambda r: r.account_id))
    return Report(generated_at, window, retention, accounts, build_total(accounts))
