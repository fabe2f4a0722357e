"""`e911d report` as an administrator runs it: the console script, configured by
environment, on a database holding a little alert history (times relative to now,
since the command reads the real clock)."""

from __future__ import annotations

import csv
import io
import json

import asyncpg
import pytest

from e911d.daemon.commands.report.render import CSV_COLUMNS
from e911d.daemon.store.db import migrate
from tests.e2e.cli import run_cli

pytestmark = pytest.mark.e2e


async def run_report(dsn: str, *args: str) -> tuple[int, str, str]:
    return await run_cli(dsn, "report", *args)


@pytest.fixture
async def history_db(database: str) -> str:
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn)
        await conn.execute(
            """
            INSERT INTO accounts (account_id) VALUES ('acme'), ('beta');
            INSERT INTO ip_groups (account_id, ip_group_id, name)
                VALUES ('acme', 'g1', 'HQ, "Wi-Fi"');
            INSERT INTO alerts (alert_id, session_id, account_id, user_id, kafka_partition,
                                fingerprint, episode, payload, raised_at, resolved_at,
                                reason, ip_group_ids) VALUES
              ('a1', 's1', 'acme', 'u1', 0, 'f', 1, '{}', now() - interval '2 days',
               now() - interval '2 days' + interval '270 seconds', 'location_updated', '{g1}'),
              ('a2', 's2', 'acme', 'u2', 0, 'f', 1, '{}', now() - interval '1 day',
               now() - interval '1 day' + interval '2 hours 5 minutes', 'location_updated',
               '{g1}'),
              ('a3', 's3', 'acme', 'u3', 0, 'f', 1, '{}', now() - interval '3 hours',
               NULL, NULL, '{}'),
              ('a4', 's4', 'acme', 'u4', 0, 'f', 1, '{}', now() - interval '30 days',
               now() - interval '29 days', 'dismissed', '{g1}');
            INSERT INTO checked_sessions VALUES
              ('s1', 'acme', now() - interval '2 days', now() - interval '2 days'),
              ('s9', 'beta', now(), now());
            """
        )
    finally:
        await conn.close()
    return database


async def test_text_is_readable(history_db: str) -> None:
    code, out, err = await run_report(history_db)
    assert code == 0, err
    assert err == ""
    assert "Account acme\n" in out
    assert "Account beta\n" in out
    acme = out.split("Account beta")[0]

    def value(label: str) -> str:
        (line,) = [ln for ln in acme.splitlines() if ln.startswith(label + " ")]
        return line[len(label) :].strip()

    assert value("  Alerts raised") == "3"  # a4 is 30 days old
    assert value("  Time to fix, median") == "1h 04m"  # (270 + 7500) / 2 = 3885 s
    assert value("  Users mis-located now") == "1  (open alerts: 1)"
    assert value('    g1 HQ, "Wi-Fi"') == "2"
    assert value("    (no network matched)") == "1"


async def test_json_for_machines_with_the_retention_note(history_db: str) -> None:
    code, out, err = await run_report(history_db, "--format", "json", "--since", "2w")
    assert code == 0, err
    assert "alert retention (7d)" in err  # the default retention is a week
    data = json.loads(out)
    assert data["window"]["seconds"] == 14 * 86_400.0
    assert "purged" in data["retention_note"]
    acme = next(a for a in data["accounts"] if a["account_id"] == "acme")
    assert acme["alerts_raised"] == 3
    assert acme["resolved"]["location_updated"] == 2
    assert acme["time_to_fix_median_seconds"] == pytest.approx(3_885.0)
    assert data["total"]["sessions_checked"] == 2


async def test_csv_loads_as_a_table(history_db: str) -> None:
    code, out, err = await run_report(history_db, "--format", "csv", "--account", "acme")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 2
    acme = dict(zip(rows[0], rows[1], strict=True))
    assert acme["account_id"] == "acme"
    assert acme["open_alerts"] == "1"
    assert acme["top_groups"] == 'g1 HQ, "Wi-Fi"=2; (no network matched)=1'


async def test_an_unknown_account_is_warned_about(history_db: str) -> None:
    code, out, err = await run_report(history_db, "--account", "acmee")
    assert code == 0
    assert "account 'acmee' is neither in the directory nor in the history" in err
    assert "Account acmee  (not in the directory)" in out


@pytest.mark.parametrize(
    "args",
    [("--since", "0d"), ("--since", "week"), ("--format", "xls"), ("--top", "0")],
)
async def test_bad_usage_exits_2_before_connecting(args: tuple[str, ...], unused_port: int) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{unused_port}/e911d"
    code, out, err = await run_report(dsn, *args)
    assert code == 2
    assert out == ""
    assert f"argument {args[0]}" in err
    assert "Traceback" not in err


async def test_unreachable_database_exits_1(unused_port: int) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{unused_port}/e911d"
    code, out, err = await run_report(dsn)
    assert code == 1
    assert out == ""
    assert "e911d: database:" in err
    assert "Traceback" not in err


async def test_missing_schema_exits_1_and_says_run_migrate(empty_database: str) -> None:
    code, out, err = await run_report(empty_database)
    assert code == 1
    assert out == ""
    assert "run `e911d migrate`" in err
