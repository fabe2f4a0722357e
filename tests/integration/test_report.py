"""`e911d report`'s figures against a scripted alert history on a real PostgreSQL.

The history is inserted by SQL at chosen times relative to a fixed UNTIL, and every
figure is compared with the number worked out by hand in the comments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest

from e911d.daemon.commands.report.figures import GroupCount, Report, Window
from e911d.daemon.commands.report.query import Selection, read_report
from e911d.daemon.store.db import migrate

pytestmark = pytest.mark.integration

UNTIL = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)
# The window is [2026-11-23 10:00, 2026-11-30 10:00]; sessions checked count from the
# start's UTC midnight, 2026-11-23 00:00.
START = UNTIL - WEEK
D, H, S = dt.timedelta(days=1), dt.timedelta(hours=1), dt.timedelta(seconds=1)


async def _alert(
    conn: asyncpg.Connection,
    alert_id: str,
    account: str,
    user: str,
    raised_ago: dt.timedelta,
    resolved_after: dt.timedelta | None = None,
    reason: str | None = None,
    groups: Sequence[str] = (),
) -> None:
    raised = UNTIL - raised_ago
    await conn.execute(
        "INSERT INTO alerts (alert_id, session_id, account_id, user_id, kafka_partition,"
        " fingerprint, episode, payload, raised_at, resolved_at, reason, ip_group_ids)"
        " VALUES ($1, $1, $2, $3, 0, 'f', 1, '{}', $4, $5, $6, $7)",
        alert_id,
        account,
        user,
        raised,
        None if resolved_after is None else raised + resolved_after,
        reason,
        list(groups),
    )


async def _checked(conn: asyncpg.Connection, session: str, account: str, at: dt.datetime) -> None:
    await conn.execute("INSERT INTO checked_sessions VALUES ($1, $2, $3, $3)", session, account, at)


@pytest.fixture
async def history(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO accounts (account_id) VALUES ('acme'), ('beta'), ('empty');"
            "INSERT INTO ip_groups (account_id, ip_group_id, name) VALUES"
            " ('acme', 'g1', 'HQ Wi-Fi'), ('acme', 'g2', 'Branch, 2nd floor'),"
            " ('beta', 'b1', 'Main \"Annex\"')"
            # acme's g3 is referenced by alerts but has been deleted since
        )
        lu, dis = "location_updated", "dismissed"
        # acme: fixes of 60, 120, 180, 240, 600 s, all raised and fixed in the window
        await _alert(conn, "a1", "acme", "u1", 2 * D, 60 * S, lu, ["g1"])
        await _alert(conn, "a2", "acme", "u2", 3 * D, 120 * S, lu, ["g1", "g2"])
        await _alert(conn, "a3", "acme", "u3", 1 * D, 180 * S, lu, ["g2"])
        await _alert(conn, "a4", "acme", "u4", 5 * D, 240 * S, lu, ["g3"])
        await _alert(conn, "a5", "acme", "u5", 6 * D, 600 * S, lu, ["g3"])
        # raised and fixed before the window: in no figure
        await _alert(conn, "a6", "acme", "u6", 10 * D, 1 * D, lu, ["g1"])
        # raised before the window, dismissed inside it: a dismissal, not a raise
        await _alert(conn, "a7", "acme", "u6", 8 * D, 6 * D, dis, ["g1"])
        # raised and dismissed inside, nothing located the session
        await _alert(conn, "a8", "acme", "u1", 4 * D, 30 * S, dis)
        # open: u7 twice (one raised long before the window), u8 once
        await _alert(conn, "a9", "acme", "u7", 1 * H, groups=["g2"])
        await _alert(conn, "a10", "acme", "u7", 20 * D, groups=["g1"])
        await _alert(conn, "a11", "acme", "u8", 2 * H)
        await _alert(conn, "a12", "acme", "u9", 3 * D, 1 * D, "superseded", ["g2"])
        await _alert(conn, "a13", "acme", "u9", 2 * D, 1 * D, "session_ended", ["g1"])
        # raised exactly at the window's start (in) and one second before it (out)
        await _alert(conn, "a16", "acme", "u10", WEEK, 1 * D, "location_matched", ["g1"])
        await _alert(conn, "a17", "acme", "u10", WEEK + S, 1 * D, "location_matched", ["g1"])
        # a group named twice in one alert counts once
        await _alert(conn, "a18", "acme", "u11", 12 * H, 1 * H, "session_ended", ["g3", "g3"])
        # beta: one open alert
        await _alert(conn, "b1a", "beta", "v1", 1 * D, groups=["b1"])
        # an account deleted from the directory: only its history is left
        await _alert(conn, "z1", "gone", "w1", 2 * D, 1 * D, "user_unknown", ["zg"])
        day = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
        await _checked(conn, "s1", "acme", day)  # the first instant of the first day: in
        await _checked(conn, "s2", "acme", day + 5 * H)  # before START, same UTC day: in
        await _checked(conn, "s3", "acme", day - S)  # the day before: out
        await _checked(conn, "s4", "acme", UNTIL - D)  # in
        await _checked(conn, "t1", "beta", UNTIL - H)  # in
        yield conn
    finally:
        await conn.close()


async def _read(
    conn: asyncpg.Connection, *ids: str, top: int = 5, since: dt.timedelta = WEEK
) -> tuple[Report, list[str]]:
    return await read_report(
        conn,
        Selection(ids, top),
        Window(since, UNTIL),
        retention=WEEK,
        generated_at=UNTIL,
    )


async def test_every_figure_of_an_account_matches_the_hand_count(
    history: asyncpg.Connection,
) -> None:
    report, unknown = await _read(history, "acme")
    assert unknown == []
    (acme,) = report.accounts
    assert acme.in_directory
    assert acme.sessions_checked == 3  # s1, s2, s4
    assert acme.open_alerts == 3  # a9, a10, a11
    assert acme.users_mislocated_now == 2  # u7, u8
    # raised in [START, UNTIL]: a1 a2 a3 a4 a5 a8 a9 a11 a12 a13 a16 a18 = 12
    assert acme.alerts_raised == 12
    assert dict(acme.resolved) == {
        "location_updated": 5,  # a1..a5 (a6 was fixed before the window)
        "location_matched": 2,  # a16, a17: both resolved 6 days ago
        "superseded": 1,  # a12
        "dismissed": 2,  # a7 (raised before), a8
        "session_ended": 2,  # a13, a18
        "recommendations_disabled": 0,
        "location_undetermined": 0,
        "user_unknown": 0,
    }
    assert acme.fixes == 5
    # 60, 120, 180, 240, 600: median at position 2 → 180
    assert acme.time_to_fix_median_seconds == 180.0
    # p90 at position 0.9·4 = 3.6 → 240 + 0.6·(600 - 240) = 456
    assert acme.time_to_fix_p90_seconds == pytest.approx(456.0)
    assert acme.dismissals == 2
    assert acme.dismissal_rate == pytest.approx(2 / 12)
    # among the 12 raised: g1 a1 a2 a13 a16 = 4; g2 a2 a3 a9 a12 = 4 (tie: by id);
    # g3 a4 a5 a18 = 3 (deleted: no name); no group a8 a11 = 2
    assert acme.top_groups == (
        GroupCount("g1", "HQ Wi-Fi", 4),
        GroupCount("g2", "Branch, 2nd floor", 4),
        GroupCount("g3", None, 3),
    )
    assert acme.no_group == 2


async def test_top_cuts_per_account_keeping_ties_in_id_order(history: asyncpg.Connection) -> None:
    report, _ = await _read(history, "acme", "beta", top=1)
    acme, beta = report.accounts
    assert acme.top_groups == (GroupCount("g1", "HQ Wi-Fi", 4),)
    assert beta.top_groups == (GroupCount("b1", 'Main "Annex"', 1),)


async def test_the_percentiles_agree_with_postgresql_percentile_cont(
    history: asyncpg.Connection,
) -> None:
    median, p90 = await history.fetchval(
        "SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP"
        " (ORDER BY extract(epoch FROM resolved_at - raised_at))"
        " FROM alerts WHERE account_id = 'acme' AND reason = 'location_updated'"
        " AND resolved_at >= $1",
        START,
    )
    report, _ = await _read(history, "acme")
    assert (
        report.accounts[0].time_to_fix_median_seconds,
        report.accounts[0].time_to_fix_p90_seconds,
    ) == pytest.approx((median, p90))


async def test_without_accounts_the_directory_and_the_history_are_listed(
    history: asyncpg.Connection,
) -> None:
    report, unknown = await _read(history)
    assert unknown == []
    assert [(a.account_id, a.in_directory) for a in report.accounts] == [
        ("acme", True),
        ("beta", True),
        ("empty", True),  # no history at all: zeros
        ("gone", False),  # deleted: its alerts remain
    ]
    beta, empty, gone = report.accounts[1:]
    assert (beta.sessions_checked, beta.alerts_raised, beta.open_alerts) == (1, 1, 1)
    assert beta.dismissal_rate == 0.0  # 0 dismissed / 1 raised
    assert beta.time_to_fix_median_seconds is None
    assert (empty.alerts_raised, empty.dismissal_rate, empty.top_groups) == (0, None, ())
    assert gone.resolved_count("user_unknown") == 1
    assert gone.top_groups == (GroupCount("zg", None, 1),)
    total = report.total
    assert total.sessions_checked == 4  # 3 + 1
    assert total.alerts_raised == 14  # 12 + 1 + 0 + 1
    assert total.open_alerts == 4  # 3 + 1
    assert total.users_mislocated_now == 3  # 2 + 1
    assert total.dismissal_rate == pytest.approx(2 / 14)
    assert total.time_to_fix_median_seconds == 180.0  # only acme fixed anything


async def test_an_unknown_account_is_listed_with_zeros_and_returned(
    history: asyncpg.Connection,
) -> None:
    report, unknown = await _read(history, "nosuch", "acme", "nosuch")
    assert [a.account_id for a in report.accounts] == ["acme", "nosuch"]
    assert unknown == ["nosuch"]
    nosuch = report.accounts[1]
    assert (nosuch.in_directory, nosuch.alerts_raised, nosuch.open_alerts) == (False, 0, 0)


async def test_a_short_window_counts_whole_utc_days_of_checked_sessions(
    history: asyncpg.Connection,
) -> None:
    # 2h: [08:00, 10:00] on the 30th; checked since 2026-11-30 00:00 → none of acme's
    # (s4 is the 29th), beta's t1 (09:00) is in. Raised: a9 (1h ago) and a11 (2h ago,
    # exactly the start: inclusive).
    report, _ = await _read(history, "acme", "beta", since=2 * H)
    acme, beta = report.accounts
    assert (acme.sessions_checked, beta.sessions_checked) == (0, 1)
    assert acme.alerts_raised == 2
    assert acme.top_groups == (GroupCount("g2", "Branch, 2nd floor", 1),)
    assert acme.no_group == 1  # a11
    assert acme.open_alerts == 3  # "now", whatever the window
    assert not report.beyond_retention
    longer, _ = await _read(history, "acme", since=8 * D)
    assert longer.beyond_retention
    # 12 + a17 (7d 1s ago) + a7 (exactly 8d ago: the start is inclusive) = 14
    assert longer.accounts[0].alerts_raised == 14
