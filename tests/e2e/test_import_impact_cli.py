"""`e911d directory import FILE --dry-run --impact [--json]` as an operator runs it: the
console script in a subprocess against a real PostgreSQL holding live sessions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.cli import migrated, run_cli

pytestmark = pytest.mark.e2e

BEFORE = """
accounts:
  - account_id: acme
    e911_recommendations: true
    locations:
      - {location_id: hq, name: HQ, address: {street: 1 Main St, city: X, country: US}}
      - {location_id: branch, name: Branch, address: {street: 2 Main St, city: X, country: US}}
    ip_groups:
      - {ip_group_id: hq-net, name: HQ, location_id: hq, addresses: [10.1.0.0/16]}
      - {ip_group_id: branch-net, name: Branch, location_id: branch, addresses: [10.2.0.0/16]}
    users:
      - {user_id: alice, e911_location_id: hq}
      - {user_id: bob, e911_location_id: hq}
"""
# hq-net re-mapped to branch: alice (at hq, assigned hq) would get an alert.
AFTER = BEFORE.replace(
    "location_id: hq, addresses: [10.1.0.0/16]", "location_id: branch, addresses: [10.1.0.0/16]"
)


async def e911d(dsn: str, *args: str | Path) -> tuple[int, str, str]:
    return await run_cli(dsn, *args, E911_LOG__FORMAT="json")


@pytest.fixture
async def db(database: str, tmp_path: Path) -> str:
    dsn = await migrated(database)
    before = tmp_path / "before.yaml"
    before.write_text(textwrap.dedent(BEFORE))
    code, _, err = await e911d(dsn, "directory", "import", before)
    assert code == 0, err
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
            " last_event_at, kafka_partition) VALUES"
            " ('s1', 'acme', 'alice', '10.1.0.5', now(), now(), 0),"
            " ('s2', 'acme', 'bob', '10.2.0.5', now(), now(), 0)"
        )
    finally:
        await conn.close()
    return dsn


@pytest.fixture
def after(tmp_path: Path) -> Path:
    path = tmp_path / "after.yaml"
    path.write_text(textwrap.dedent(AFTER))
    return path


async def test_text_report(db, after):
    code, out, err = await e911d(db, "directory", "import", after, "--dry-run", "--impact")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "~ ip_group acme/hq-net"
    assert lines[1].endswith("dry run: would apply 1 change, nothing written")
    assert "account acme: 2 live sessions, 1 changed by this import" in lines
    assert "  1 raised, 0 superseded, 0 resolved, 0 averted" in lines
    assert (
        "    s1  user alice  10.1.0.5, assigned hq: match: no change -> "
        "mismatch (recommends branch): raise"
    ) in lines
    # bob (at branch, assigned hq) mismatches under both: his first check raises anyway.
    assert (
        "  next checks with the current directory: raise 1, supersede 0, resolve 0; "
        "with the file's: raise 2, supersede 0, resolve 0"
    ) in lines
    assert lines[-1].startswith("total: 1 account, 2 live sessions, 1 changed: 1 raised")


async def test_json_report(db, after):
    args = ("directory", "import", after, "--dry-run", "--impact", "--json")
    code, out, err = await e911d(db, *args)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["plan"]["changes"] == [
        {"op": "~", "kind": "ip_group", "account_id": "acme", "id": "hq-net"}
    ]
    (acme,) = doc["impact"]["accounts"]
    assert acme["account_id"] == "acme" and acme["sessions"] == 2
    assert acme["changed"]["raised"] == 1
    (example,) = acme["examples"]["raised"]
    assert example["session_id"] == "s1" and example["user_id"] == "alice"
    assert example["current"]["outcome"] == "match"
    assert example["file"]["recommended_location_ids"] == ["branch"]
    assert doc["impact"]["total"]["changed"]["sessions"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--impact",), "--impact needs --dry-run"),
        (("--impact", "--json"), "--impact needs --dry-run"),
        (("--dry-run", "--json"), "--json needs --impact"),
    ],
)
async def test_bad_arguments_exit_2_and_write_nothing(db, after, args, message):
    code, out, err = await e911d(db, "directory", "import", after, *args)
    assert code == 2
    assert message in err and out == ""
    conn = await asyncpg.connect(db)
    try:
        location = await conn.fetchval(
            "SELECT location_id FROM ip_groups WHERE ip_group_id = 'hq-net'"
        )
    finally:
        await conn.close()
    assert location == "hq"


async def test_an_invalid_file_reports_its_errors_and_no_impact(db, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(BEFORE).replace("e911_location_id: hq", "e911_location_id: x"))
    code, out, err = await e911d(db, "directory", "import", bad, "--dry-run", "--impact")
    assert code == 1
    assert "names no location of account 'acme'" in err and out == ""


async def test_an_unusable_geoip_database_is_refused_as_the_checks_refuse_it(db, after, tmp_path):
    # The impact decides as the checks do, with their geolocation check: a configured
    # database that cannot be opened stops it (exit 1) rather than being skipped.
    missing = tmp_path / "missing.mmdb"
    args = ("directory", "import", after, "--dry-run", "--impact")
    code, out, err = await run_cli(db, *args, E911_GEOIP__DATABASE=str(missing))
    assert code == 1, (out, err)
    assert "E911_GEOIP__DATABASE" in err and out == ""
