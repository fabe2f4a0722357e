"""RFC 3339 times: legal spellings with the instant they denote, or invalid ones.

Session event times are drawn relative to the current time (the daemon refuses times
beyond its clock skew allowance), so values must be used soon after they are drawn.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from hypothesis import strategies as st

MAX_CLOCK_SKEW: Final = dt.timedelta(seconds=300)  # the default checks.max_clock_skew_seconds

_OFFSETS: Final = [None, 0, 330, -480, 840, -720, 1, -59]  # minutes; None renders "Z"


@st.composite
def rendered_times(draw: st.DrawFn, when: dt.datetime) -> tuple[str, dt.datetime]:
    """An RFC 3339 spelling of ``when`` (UTC) and the instant it denotes."""
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    if spec == "seconds":
        when = when.replace(microsecond=0)
    elif spec == "milliseconds":
        when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    offset = draw(st.sampled_from(_OFFSETS))
    if offset is None:
        return when.isoformat(timespec=spec).replace("+00:00", "Z"), when
    local = when.astimezone(dt.timezone(dt.timedelta(minutes=offset)))
    return local.isoformat(timespec=spec), when


def _naive(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, s: int = 0
) -> dt.datetime:
    """Hypothesis takes naive bounds (the time zone is drawn separately)."""
    return dt.datetime(year, month, day, hour, minute, s, tzinfo=dt.UTC).replace(tzinfo=None)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@st.composite
def good_session_times(draw: st.DrawFn) -> tuple[str, dt.datetime]:
    """Within the last hour, or a little ahead (well inside the 300 s clock skew)."""
    seconds = draw(st.integers(-3600, 60))
    micros = draw(st.integers(0, 999_999))
    return draw(rendered_times(utcnow() + dt.timedelta(seconds=seconds, microseconds=micros)))


@st.composite
def any_valid_times(draw: st.DrawFn) -> tuple[str, dt.datetime]:
    when = draw(st.datetimes(_naive(2000, 1, 2), _naive(2199, 12, 30), timezones=st.just(dt.UTC)))
    return draw(rendered_times(when))


@st.composite
def invalid_times(draw: st.DrawFn, session: bool) -> str:
    """Times that are invalid_time by construction (``session``: also far in the future)."""
    kinds = ["naive", "out_of_range", "fixed", "garbage", "too_long"]
    kind = draw(st.sampled_from([*kinds, "future"] if session else kinds))
    if kind == "naive":
        text, _ = draw(any_valid_times())
        return text.removesuffix("Z")[:19] + draw(st.sampled_from(["", ".5", ".123456"]))
    if kind == "out_of_range":
        when = draw(
            st.one_of(
                st.datetimes(_naive(1, 1, 1), _naive(1999, 12, 31, 23, 59, 59)),
                st.datetimes(_naive(2200, 1, 1), _naive(9999, 12, 31)),
            )
        )
        return when.isoformat() + draw(st.sampled_from(["Z", "+00:00"]))
    if kind == "fixed":
        return draw(
            st.sampled_from(
                [
                    "",
                    "yesterday",
                    "now",
                    "1970-01-01T00:00:00Z",
                    "0001-01-01T00:00:00+01:00",
                    "9999-12-31T23:59:59-01:00",
                    "2026-13-01T00:00:00Z",
                    "2026-02-30T00:00:00Z",
                    "2026-11-26T25:00:00Z",
                    "2026-11-26T09:61:00Z",
                    "2026-11-26T09:00:00+24:00",
                    "2026-11-26T09:00:00 Z",
                    "Thu, 26 Nov 2026 09:00:00 GMT",
                ]
            )
        )
    if kind == "garbage":
        return draw(
            st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzTZ:-+. \u00e9"), max_size=30)
        )
    if kind == "too_long":
        text, _ = draw(any_valid_times())
        return text + " " * (65 - len(text)) + draw(st.text(max_size=40))
    # Stamped beyond the allowed clock skew (and before 2200).
    seconds = draw(st.integers(int(MAX_CLOCK_SKEW.total_seconds()) * 3, 3 * 10**9))
    text, _ = draw(rendered_times(utcnow() + dt.timedelta(seconds=seconds)))
    return text
