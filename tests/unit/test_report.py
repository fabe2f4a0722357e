"""The pure parts of `e911d report`: the --since syntax, the percentile definition,
the per-account arithmetic and the three renderings."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest

from e911d.daemon.commands.report.figures import (
    REASONS,
    AccountRows,
    BadDuration,
    GroupCount,
    Report,
    Window,
    build_account,
    build_report,
    parse_duration,
    percentile,
)
from e911d.daemon.commands.report.render import (
    CSV_COLUMNS,
    human_duration,
    render_csv,
    render_json,
    render_text,
)

UNTIL = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 7 * 86_400),
        ("24h", 86_400),
        ("90m", 5_400),
        ("3600s", 3_600),
        ("2w", 14 * 86_400),
        ("1d12h", 86_400 + 12 * 3_600),
        (" 1H30M ", 5_400),
    ],
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "1.5h", "7d ago", "1d-2h", "7 d"])
def test_bad_durations_are_refused_naming_the_value(text: str) -> None:
    with pytest.raises(BadDuration, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0d", "0s", "0h0m"])
def test_an_empty_window_is_refused(text: str) -> None:
    with pytest.raises(BadDuration, match="longer than zero"):
        parse_duration(text)


def test_an_absurd_window_is_refused_rather_than_overflowing() -> None:
    with pytest.raises(BadDuration, match="at most 3650d"):
        parse_duration("99999999999999w")


def test_percentile_of_nothing_is_none_not_zero() -> None:
    assert percentile([], 0.5) is None
    assert percentile([], 0.9) is None


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([42.0], 0.5) == 42.0
    assert percentile([42.0], 0.9) == 42.0


def test_percentile_of_two_values_interpolates() -> None:
    # position = q·(n-1): 0.5 → halfway; 0.9 → 10 + 0.9·(20-10) = 19
    assert percentile([20.0, 10.0], 0.5) == 15.0
    assert percentile([20.0, 10.0], 0.9) == pytest.approx(19.0)


def test_percentile_is_percentile_cont() -> None:
    values = [600.0, 60.0, 180.0, 240.0, 120.0]
    # sorted 60,120,180,240,600; median at position 2 → 180
    assert percentile(values, 0.5) == 180.0
    # p90 at position 0.9·4 = 3.6 → 240 + 0.6·(600-240) = 456
    assert percentile(values, 0.9) == pytest.approx(456.0)
    assert percentile(values, 0.0) == 60.0
    assert percentile(values, 1.0) == 600.0
    with pytest.raises(ValueError, match="outside"):
        percentile(values, 1.5)


def test_window_day_start_is_the_utc_midnight_of_the_start() -> None:
    # until 00:30 UTC written as 02:30+02:00; start 23:30 UTC the day before, which is
    # already 01:30 on the 30th in +02:00: the day counted must be the UTC one (29th).
    until = dt.datetime(2026, 11, 30, 0, 30, tzinfo=dt.UTC)
    w = Window(dt.timedelta(hours=1), until.astimezone(dt.timezone(dt.timedelta(hours=2))))
    assert w.start == dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)
    assert w.day_start == dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def test_an_account_lists_every_reason_and_computes_rates() -> None:
    a = build_account(
        AccountRows(
            "acme",
            alerts_raised=8,
            resolved={"dismissed": 2, "location_updated": 3},
            fix_seconds=[300.0, 60.0, 120.0],
        )
    )
    assert [r for r, _ in a.resolved] == list(REASONS)
    assert a.resolved_count("dismissed") == 2
    assert a.resolved_count("user_unknown") == 0
    assert a.dismissals == 2
    assert a.dismissal_rate == 0.25  # 2 / 8
    assert a.fixes == 3
    assert a.time_to_fix_median_seconds == 120.0
    assert a.time_to_fix_p90_seconds == pytest.approx(264.0)  # 120 + 0.8·180


def test_nothing_raised_means_no_rate_not_zero() -> None:
    a = build_account(AccountRows("quiet", resolved={"dismissed": 1}))
    assert a.dismissal_rate is None
    assert a.time_to_fix_median_seconds is None


def _report() -> Report:
    acme = AccountRows(
        "acme",
        sessions_checked=12,
        users_mislocated_now=3,
        open_alerts=4,
        alerts_raised=9,
        resolved={"location_updated": 2, "dismissed": 1},
        fix_seconds=[270.0, 7_500.0],
        top_groups=[GroupCount("g1", 'HQ, "Wi-Fi"', 5), GroupCount("g9", None, 2)],
        no_group=1,
    )
    gone = AccountRows("zeta", in_directory=False, alerts_raised=1)
    return build_report(
        UNTIL, Window(dt.timedelta(days=30), UNTIL), dt.timedelta(days=7), [gone, acme]
    )


def test_total_sums_accounts_and_pools_the_fix_times() -> None:
    report = _report()
    assert [a.account_id for a in report.accounts] == ["acme", "zeta"]
    total = report.total
    assert total.alerts_raised == 10
    assert total.dismissal_rate == 0.1  # 1 / 10
    assert total.time_to_fix_median_seconds == pytest.approx(3_885.0)  # (270 + 7500) / 2
    assert total.top_groups == ()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.4, "0s"),
        (45, "45s"),
        (270, "4m 30s"),
        (7_500, "2h 05m"),
        (273_600, "3d 04h"),
    ],
)
def test_fix_times_read_like_a_person_would_say_them(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


def test_csv_round_trips_through_a_reader_with_a_fixed_header() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(_report()))))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 3
    acme = dict(zip(rows[0], rows[1], strict=True))
    assert acme["account_id"] == "acme"
    assert acme["alerts_raised"] == "9"
    assert acme["resolved_dismissed"] == "1"
    assert acme["resolved_superseded"] == "0"
    assert acme["time_to_fix_median_seconds"] == "3885.0"
    assert acme["dismissal_rate"] == "0.111"
    # the comma and quotes in the name survive the round trip
    assert acme["top_groups"] == 'g1 HQ, "Wi-Fi"=5; g9=2; (no network matched)=1'
    zeta = dict(zip(rows[0], rows[2], strict=True))
    assert zeta["time_to_fix_median_seconds"] == ""
    assert zeta["top_groups"] == ""


def test_json_has_numbers_as_numbers_and_the_retention_note() -> None:
    data = json.loads(render_json(_report()))
    assert data["window"]["seconds"] == 30 * 86_400.0
    assert data["window"]["until"] == "2026-11-30T10:00:00+00:00"
    assert "purged" in data["retention_note"]
    acme = data["accounts"][0]
    assert acme["time_to_fix_p90_seconds"] == pytest.approx(6_777.0)  # 270 + 0.9·7230
    assert acme["resolved"]["location_updated"] == 2
    assert acme["top_groups"][1] == {"ip_group_id": "g9", "name": None, "alerts": 2}
    assert data["accounts"][1]["in_directory"] is False
    assert data["total"]["alerts_raised"] == 10
    assert "top_groups" not in data["total"]


def _value(text: str, label: str) -> str:
    """The value printed after ``label`` on its line (labels are unique per block)."""
    (line,) = [ln for ln in text.splitlines() if ln.startswith(label + " ")]
    return line[len(label) :].strip()


def test_text_shows_the_figures() -> None:
    text = render_text(_report())
    acme = text.split("Account zeta")[0]
    assert "2026-10-31 10:00:00 UTC .. 2026-11-30 10:00:00 UTC  (30d)" in text
    assert "note: the window (30d) is longer than the alert retention (7d)" in text
    assert "Account zeta  (not in the directory)" in text
    assert _value(acme, "  Users mis-located now") == "3  (open alerts: 4)"
    assert _value(acme, "  Time to fix, median") == "1h 04m"  # 3885 s
    assert _value(acme, "    location_updated") == "2"
    assert _value(acme, "    recommendations_disabled") == "0"
    assert _value(acme, '    g1 HQ, "Wi-Fi"') == "5"
    assert _value(acme, "    (no network matched)") == "1"
    assert _value(acme, "  Dismissals") == "1  (rate 11.1%)"
    assert "Total (all accounts)" in text


def test_text_values_form_one_column_however_long_a_name() -> None:
    long_name = GroupCount("g-with-a-long-id", "A group name longer than the labels", 7)
    report = build_report(
        UNTIL,
        Window(dt.timedelta(days=7), UNTIL),
        dt.timedelta(days=7),
        [AccountRows("acme", alerts_raised=7, top_groups=[long_name])],
    )
    block = render_text(report).split("\n\n")[1].splitlines()[1:]
    valued = [ln for ln in block if not ln.endswith(("Resolved", "mismatches"))]
    matches = [re.match(r"^(\s*\S.*?)\s{2,}(\S.*)$", ln) for ln in valued]
    columns = {m.start(2) for m in matches if m is not None}
    assert None not in matches, block  # every label has a gap before its value
    assert len(columns) == 1, block
    assert block[-1].endswith("A group name longer than the labels  7")


def test_no_retention_note_within_the_retention() -> None:
    report = build_report(UNTIL, Window(dt.timedelta(days=7), UNTIL), dt.timedelta(days=7), [])
    assert "note:" not in render_text(report)
    assert "retention_note" not in json.loads(render_json(report))
    assert "(no accounts)" in render_text(report)
