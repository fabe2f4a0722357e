"""`directory lint` gives the same findings for the same directory whether it reads a
file or the database (real PostgreSQL): both build the import's model the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e911d.config import load_settings
from e911d.daemon.commands.directory_file import render, validate
from e911d.daemon.commands.lint.command import lint_command
from e911d.daemon.store.db import PoolConfig, connect_pool, migrate
from e911d.daemon.store.directory import apply_change
from tests.directory_docs import group, loc, user

# Every kind of finding, sorted by ids as an export writes it (so paths agree).
DOCUMENT: dict[str, Any] = {
    "accounts": [
        {
            "account_id": "acme",
            "e911_recommendations": True,
            "locations": [loc("hq"), loc("lab"), loc("shed")],
            "ip_groups": [
                group(
                    "g1", "hq", "10.0.0.0/24", "192.0.2.0-192.0.2.255", bssids=["F0-6E-0B-C2-03-21"]
                ),
                group(
                    "g2",
                    "lab",
                    "10.0.0.0-10.0.0.255",
                    "10.0.1.0/24",
                    bssids=["f06e.0bc2.0321"],
                    switches=[
                        {"chassis_id": "core-1", "port_id": "Gi1/0/1"},
                        {"chassis_id": "edge"},
                    ],
                ),
                group(
                    "g3",
                    "hq",
                    switches=[
                        {"chassis_id": "CORE-1", "port_id": "gi1/0/1"},
                        {"chassis_id": "EDGE"},
                    ],
                ),
                group("g4", None, "172.16.0.0/12"),
                group("g5", "gone", "198.51.100.0/24"),
                group("vpn", None, "10.0.1.0/24", locating=False),
            ],
            "users": [
                user("u1", "hq"),
                user("u2", "attic"),
                user("u3", None),
            ],
        },
        {"account_id": "bare", "e911_recommendations": False, "users": [user("x", None, on=True)]},
        {"account_id": "quiet", "e911_recommendations": False, "users": [user("y", None)]},
    ]
}
DOCUMENT["accounts"].sort(key=lambda a: a["account_id"])


@pytest.fixture
async def dsn(database: str) -> str:
    pool = await connect_pool(PoolConfig(database, min_size=1, max_size=1))
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            # The import refuses dangling references; the projector takes them as the
            # events deliver them, in any order.
            checked = validate(DOCUMENT, check_references=False)
            assert checked.directory is not None
            async with conn.transaction():
                for entry in checked.directory.accounts:
                    for change in (entry.account, *entry.locations, *entry.ip_groups, *entry.users):
                        await apply_change(conn, change)
    finally:
        await pool.close()
    return database


async def findings(
    dsn: str, capsys: pytest.CaptureFixture[str], file: Path | None, *accounts: str
) -> tuple[int, dict[str, Any]]:
    settings = load_settings(environ={"E911_POSTGRES__DSN": dsn})
    code = await lint_command(settings, file=file, accounts=list(accounts), as_json=True)
    out = capsys.readouterr()
    assert out.out, out.err
    return code, json.loads(out.out)


async def test_file_and_database_give_the_same_findings(
    dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps(DOCUMENT), "utf-8")
    as_yaml = tmp_path / "d.yaml"
    as_yaml.write_text(render(DOCUMENT, "yaml"), "utf-8")  # as an export writes it

    from_db = await findings(dsn, capsys, None)
    assert from_db == await findings(dsn, capsys, as_json)
    assert from_db == await findings(dsn, capsys, as_yaml)

    code, doc = from_db
    assert code == 1
    assert [(f["code"], f["path"]) for f in doc["findings"]] == [
        ("ambiguous_bssid", "accounts[0].ip_groups[1]"),
        ("ambiguous_network", "accounts[0].ip_groups[1]"),
        ("ambiguous_switch", "accounts[0].ip_groups[2]"),
        ("ambiguous_switch_port", "accounts[0].ip_groups[2]"),
        ("group_without_location", "accounts[0].ip_groups[3]"),
        ("group_location_missing", "accounts[0].ip_groups[4]"),
        ("nonlocating_tie", "accounts[0].ip_groups[5]"),
        ("location_without_network", "accounts[0].locations[2]"),
        ("user_location_missing", "accounts[0].users[1]"),
        ("user_without_location", "accounts[0].users[2]"),
        ("account_without_locations", "accounts[1]"),
    ]
    assert doc["summary"] == {"errors": 2, "warnings": 9, "accounts": 3}


async def test_one_account_from_the_database_is_that_accounts_export(
    dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (acme,) = [a for a in DOCUMENT["accounts"] if a["account_id"] == "acme"]
    only = tmp_path / "acme.json"
    only.write_text(json.dumps({"accounts": [acme]}), "utf-8")
    from_db = await findings(dsn, capsys, None, "acme")
    assert from_db == await findings(dsn, capsys, only)
    assert from_db[1]["summary"] == {"errors": 1, "warnings": 9, "accounts": 1}
    assert {f["account_id"] for f in from_db[1]["findings"]} == {"acme"}


async def test_an_account_not_in_the_database(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(environ={"E911_POSTGRES__DSN": dsn})
    assert await lint_command(settings, file=None, accounts=["nope"], as_json=False) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "no account 'nope' in the database" in out.err
