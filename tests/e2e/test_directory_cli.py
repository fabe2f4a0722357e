"""`e911d directory import` / `export` as an operator runs them: the console script in a
subprocess, configured by environment, against a real PostgreSQL."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import asyncpg
import pytest
import yaml

from tests.e2e.cli import migrated, run_cli

EXAMPLE = Path(__file__).parents[2] / "docs" / "directory.example.yaml"
TABLES = ("accounts", "locations", "ip_groups", "ip_group_networks", "users")

pytestmark = pytest.mark.e2e


async def e911d(dsn: str, *args: str | Path) -> tuple[int, str, str]:
    return await run_cli(dsn, *args, E911_LOG__FORMAT="json")


@pytest.fixture
async def db(database: str) -> str:
    return await migrated(database)


async def counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}  # noqa: S608
    finally:
        await conn.close()


async def row_versions(dsn: str) -> list[tuple[str, str]]:
    """Every directory row with its xmin: any write, even of equal values, changes it."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = []
        for table in (*TABLES, "directory_versions"):
            for r in await conn.fetch(f"SELECT xmin::text AS x, t::text AS row FROM {table} t"):  # noqa: S608
                rows.append((f"{table} {r['row']}", r["x"]))
        return sorted(rows)
    finally:
        await conn.close()


def plan_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line[:2] in ("+ ", "~ ", "- ")]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


EXAMPLE_PLAN = [
    "+ account acme",
    "+ location acme/ana-home",
    "+ location acme/denver",
    "+ location acme/hq",
    "+ ip_group acme/denver-office",
    "+ ip_group acme/hq-lan",
    "+ ip_group acme/vpn",
    "+ user acme/alice",
    "+ user acme/ana",
    "+ user acme/bob",
    "+ account globex",
    "+ location globex/london",
    "+ location globex/plant",
    "+ ip_group globex/london-net",
    "+ ip_group globex/plant-net",
    "+ user globex/frank",
    "+ user globex/hank",
    "+ user globex/mindy",
]
EMPTY = dict.fromkeys(TABLES, 0)
EXAMPLE_COUNTS = {
    "accounts": 2,
    "locations": 5,
    "ip_groups": 5,
    "ip_group_networks": 12,  # the range 192.0.2.10-192.0.2.20 is four CIDRs
    "users": 6,
}


async def test_dry_run_then_import_of_the_example_then_a_reimport_that_writes_nothing(db):
    code, out, err = await e911d(db, "directory", "import", EXAMPLE, "--dry-run")
    assert code == 0, err
    assert plan_lines(out) == EXAMPLE_PLAN
    assert out.splitlines()[-1] == (
        "accounts: 2 created, 0 updated, 0 unchanged; "
        "locations: 5 created, 0 updated, 0 unchanged, 0 deleted; "
        "ip_groups: 5 created, 0 updated, 0 unchanged, 0 deleted; "
        "users: 6 created, 0 updated, 0 unchanged, 0 deleted; "
        "dry run: would apply 18 changes, nothing written"
    )
    assert await counts(db) == EMPTY

    code, out, err = await e911d(db, "directory", "import", EXAMPLE)
    assert code == 0, err
    assert plan_lines(out) == EXAMPLE_PLAN
    assert out.splitlines()[-1].endswith("; applied 18 changes")
    assert await counts(db) == EXAMPLE_COUNTS
    conn = await asyncpg.connect(db)
    try:
        hq = await conn.fetchrow(
            "SELECT name, address::text AS address, lat, lon FROM locations "
            "WHERE account_id = 'acme' AND location_id = 'hq'"
        )
        assert hq["name"] == "Headquarters"
        assert json.loads(hq["address"]) == {
            "street": "100 Main St",
            "building": "2",
            "floor": "3",
            "unit": "Suite 301",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        }
        assert (hq["lat"], hq["lon"]) == (39.7817, -89.6501)
        group = await conn.fetchrow(
            "SELECT location_id, addresses, bssids, switches::text AS switches FROM ip_groups "
            "WHERE ip_group_id = 'denver-office'"
        )
        assert group["location_id"] == "denver"
        assert group["addresses"] == ["192.0.2.10-192.0.2.20", "198.51.100.7"]
        assert group["bssids"] == ["f06e0bc2032*", "f06e0bc20410"]
        assert json.loads(group["switches"]) == [
            {"chassis_id": "001b54aabbcc", "port_id": "gi1/0/12"},
            {"chassis_id": "denver-core-sw"},
        ]
        vpn = await conn.fetchrow(
            "SELECT location_id, locating FROM ip_groups WHERE ip_group_id = 'vpn'"
        )
        assert (vpn["location_id"], vpn["locating"]) == (None, False)
        assert [
            r["network"]
            for r in await conn.fetch(
                "SELECT text(network) AS network FROM ip_group_networks "
                "WHERE ip_group_id = 'denver-office' ORDER BY network"
            )
        ] == ["192.0.2.10/31", "192.0.2.12/30", "192.0.2.16/30", "192.0.2.20/32", "198.51.100.7/32"]
        users = {
            r["user_id"]: (r["e911_recommendations"], r["e911_location_id"])
            for r in await conn.fetch("SELECT * FROM users WHERE account_id = 'acme'")
        }
        assert users == {"alice": (False, "hq"), "ana": (True, "ana-home"), "bob": (False, None)}
    finally:
        await conn.close()

    before = await row_versions(db)
    code, out, err = await e911d(db, "directory", "import", EXAMPLE)
    assert code == 0, err
    assert plan_lines(out) == []
    assert out.splitlines()[-1] == (
        "accounts: 0 created, 0 updated, 2 unchanged; "
        "locations: 0 created, 0 updated, 5 unchanged, 0 deleted; "
        "ip_groups: 0 created, 0 updated, 5 unchanged, 0 deleted; "
        "users: 0 created, 0 updated, 6 unchanged, 0 deleted; applied 0 changes"
    )
    assert await row_versions(db) == before  # not one row rewritten


async def test_a_changed_file_updates_only_what_changed_and_a_dry_run_writes_nothing(db, tmp_path):
    assert (await e911d(db, "directory", "import", EXAMPLE))[0] == 0
    text = EXAMPLE.read_text()
    changed = write(
        tmp_path / "changed.yaml",
        text.replace("name: Headquarters", "name: Head office")
        .replace("e911_recommendations: false             # each", "e911_recommendations: true #")
        .replace("- 198.51.100.7                    # a single address", "- 198.51.100.8"),
    )
    before = await row_versions(db)
    code, out, err = await e911d(db, "directory", "import", changed, "--dry-run")
    assert code == 0, err
    expected = ["~ location acme/hq", "~ ip_group acme/denver-office", "~ account globex"]
    assert plan_lines(out) == expected
    assert "dry run: would apply 3 changes, nothing written" in out
    assert await row_versions(db) == before

    code, out, err = await e911d(db, "directory", "import", changed)
    assert code == 0, err
    assert plan_lines(out) == expected
    after = dict(await row_versions(db))
    rewritten = {row.split(" ", 1)[0] for row, x in after.items() if dict(before).get(row) != x}
    assert rewritten == {
        "locations",
        "ip_groups",
        "ip_group_networks",
        "accounts",
        "directory_versions",
    }
    conn = await asyncpg.connect(db)
    try:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM ip_group_networks WHERE network = '198.51.100.8/32'"
            )
            == 1
        )
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM ip_group_networks WHERE network = '198.51.100.7/32'"
            )
            == 0
        )
    finally:
        await conn.close()


async def test_an_invalid_file_lists_every_error_with_its_path_and_writes_nothing(db, tmp_path):
    bad = write(
        tmp_path / "bad.yaml",
        """\
        accounts:
          - account_id: good
            e911_recommendations: true
            locations:
              - location_id: hq
                name: HQ
                address: {street: 1 Main St, city: Springfield, country: US}
            ip_groups:
              - {ip_group_id: lan, name: LAN, location_id: hq, addresses: [203.0.113.0/24]}
            users:
              - {user_id: alice, e911_location_id: hq}
          - account_id: acme
            e911_recommendations: "yes"
            locations:
              - location_id: hq
                name: HQ
                address: {street: 1 Main St, city: Springfield, country: US}
                coordinates: {lat: 91, lon: 0}
              - location_id: hq
                name: HQ again
                address: {street: 2 Main St, city: Springfield, country: US}
            ip_groups:
              - ip_group_id: lan
                name: LAN
                addresses: [203.0.113.0/24, 10.0.0.300, "192.0.2.20-192.0.2.10"]
            users:
              - {user_id: bob, e911_location_id: nowhere}
              - {user_id: carol, e911_locaton_id: hq}
          - account_id: good
        """,
    )
    code, out, err = await e911d(db, "directory", "import", bad)
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "accounts[1].e911_recommendations: expected a boolean, got 'yes'",
        "accounts[1].ip_groups[0].addresses[1]: '10.0.0.300' is not an IP address",
        "accounts[1].ip_groups[0].addresses[2]: "
        "'192.0.2.20-192.0.2.10' is an empty range (start after end)",
        "accounts[1].locations[0].coordinates.lat: 91 is out of range: must be between -90 and 90",
        "accounts[1].locations[1].location_id: duplicate 'hq' (also at accounts[1].locations[0])",
        "accounts[1].users[0].e911_location_id: 'nowhere' names no location of account 'acme'",
        "accounts[1].users[1].e911_locaton_id: unknown key; did you mean 'e911_location_id'?",
        "accounts[2].account_id: duplicate 'good' (also at accounts[0])",
        f"e911d: {bad} is invalid (8 errors); nothing was written",
    ]
    assert await counts(db) == EMPTY  # the good account before the bad ones is not written


async def test_unreadable_and_hostile_files_are_refused_before_the_database(tmp_path, unused_port):
    unreachable = f"postgresql://postgres@127.0.0.1:{unused_port}/nowhere"
    cases = {
        write(tmp_path / "laughs.yaml", "a: &a [x, x]\nb: [*a, *a]\n"): (
            "invalid YAML at line 1, column 4: "
            "YAML anchors and aliases (& and *) are not allowed in a directory file"
        ),
        write(tmp_path / "broken.json", '{"accounts": [\n'): (
            "invalid JSON at line 2, column 1: Expecting value"
        ),
        write(tmp_path / "notes.txt", "accounts: []"): (
            "cannot tell the format from the extension '.txt': use .yaml, .yml or .json"
        ),
        tmp_path / "missing.yaml": "cannot read the file: No such file or directory",
    }
    for path, message in cases.items():
        code, out, err = await e911d(unreachable, "directory", "import", path)
        assert (code, out) == (1, ""), err
        assert err.splitlines() == [
            f"{path}: {message}",
            f"e911d: {path} is invalid; nothing was written",
        ]


async def test_prune_deletes_what_the_file_omits_of_its_own_accounts_only(db, tmp_path):
    assert (await e911d(db, "directory", "import", EXAMPLE))[0] == 0
    subset = write(
        tmp_path / "subset.yaml",
        """\
        accounts:
          - account_id: acme
            e911_recommendations: true
            locations:
              - location_id: hq
                name: Headquarters
                address:
                  {street: 100 Main St, building: "2", floor: "3", unit: Suite 301,
                   city: Springfield, region: IL, postal_code: "62701", country: US}
                coordinates: {lat: 39.7817, lon: -89.6501}
            ip_groups:
              - ip_group_id: hq-lan
                name: HQ LAN
                location_id: hq
                addresses: [203.0.113.0/24, 2001:db8:10::/48]
            users:
              - {user_id: alice, e911_location_id: hq}
              - {user_id: ana, e911_recommendations: true, e911_location_id: ana-home}
        """,
    )
    # Without --prune: ana's location is in the database, so the reference is fine.
    code, out, err = await e911d(db, "directory", "import", subset)
    assert code == 0, err
    assert plan_lines(out) == []
    assert await counts(db) == EXAMPLE_COUNTS

    # With --prune ana-home would be deleted: the reference must be in the file.
    code, out, err = await e911d(db, "directory", "import", subset, "--prune")
    assert code == 1
    assert err.splitlines()[0] == (
        "accounts[0].users[1].e911_location_id: 'ana-home' names no location of account "
        "'acme' in the file (with --prune the database's locations do not count)"
    )
    assert await counts(db) == EXAMPLE_COUNTS

    write(subset, subset.read_text().replace("e911_location_id: ana-home", "e911_location_id: hq"))
    code, out, err = await e911d(db, "directory", "import", subset, "--prune", "--dry-run")
    assert code == 0, err
    expected = [
        "- location acme/ana-home",
        "- location acme/denver",
        "- ip_group acme/denver-office",
        "- ip_group acme/vpn",
        "~ user acme/ana",
        "- user acme/bob",
    ]
    assert plan_lines(out) == expected
    assert await counts(db) == EXAMPLE_COUNTS

    code, out, err = await e911d(db, "directory", "import", subset, "--prune")
    assert code == 0, err
    assert plan_lines(out) == expected
    assert "locations: 0 created, 0 updated, 1 unchanged, 2 deleted" in out
    assert await counts(db) == {
        "accounts": 2,
        "locations": 3,  # acme/hq and globex's two
        "ip_groups": 3,
        "ip_group_networks": 2 + 3,  # hq-lan; globex's plant-net and london-net
        "users": 5,  # alice, ana and globex's three
    }
    code, out, _ = await e911d(db, "directory", "export", "--account", "globex")
    assert code == 0
    assert [a["account_id"] for a in yaml.safe_load(out)["accounts"]] == ["globex"]
    assert len(yaml.safe_load(out)["accounts"][0]["users"]) == 3  # untouched


async def test_export_yaml_and_json_round_trip_byte_for_byte(db, tmp_path):
    assert (await e911d(db, "directory", "import", EXAMPLE))[0] == 0
    code, exported, err = await e911d(db, "directory", "export")
    assert code == 0, err
    assert exported.startswith("accounts:\n  - account_id: acme\n    e911_recommendations: true\n")
    as_json = tmp_path / "export.json"
    code, out, err = await e911d(db, "directory", "export", "--format", "json", "-o", as_json)
    assert (code, out) == (0, ""), err
    assert "exported 2 account(s)" in err
    assert json.loads(as_json.read_text()) == yaml.safe_load(exported)
    assert (
        yaml.safe_load(EXAMPLE.read_text())["accounts"][0]["ip_groups"][0]["addresses"]
        == (
            yaml.safe_load(exported)["accounts"][0]["ip_groups"][1]["addresses"]  # hq-lan, as given
        )
    )

    as_yaml = write(tmp_path / "export.yaml", exported)
    before = await row_versions(db)
    for path in (as_yaml, as_json):
        code, out, err = await e911d(db, "directory", "import", path)
        assert code == 0, err
        assert plan_lines(out) == []
        assert "accounts: 0 created, 0 updated, 2 unchanged" in out
    assert await row_versions(db) == before

    code, again, _ = await e911d(db, "directory", "export")
    assert code == 0
    assert again == exported
    code, one, _ = await e911d(db, "directory", "export", "--account", "acme", "--format", "json")
    assert code == 0
    assert [a["account_id"] for a in json.loads(one)["accounts"]] == ["acme"]


async def test_export_of_an_unknown_account_fails(db):
    assert (await e911d(db, "directory", "import", EXAMPLE))[0] == 0
    code, out, err = await e911d(
        db, "directory", "export", "--account", "acme", "--account", "nope"
    )
    assert (code, out) == (1, "")
    assert err.splitlines() == ["e911d: no account 'nope' in the database"]


async def test_export_skips_rows_of_accounts_without_an_account_row_with_a_warning(db):
    assert (await e911d(db, "directory", "import", EXAMPLE))[0] == 0
    conn = await asyncpg.connect(db)
    try:
        await conn.execute(
            "INSERT INTO users (account_id, user_id) VALUES ('ghost', 'u1'), ('ghost', 'u2'), "
            "('spook', 'u3');"
            "INSERT INTO locations (account_id, location_id, name, address) "
            "VALUES ('ghost', 'l', 'L', '{}')"
        )
    finally:
        await conn.close()
    code, out, err = await e911d(db, "directory", "export")
    assert code == 0
    assert "ghost" not in out and "spook" not in out
    assert [a["account_id"] for a in yaml.safe_load(out)["accounts"]] == ["acme", "globex"]
    assert (
        "e911d: warning: skipped the rows of 2 account id(s) that have no accounts row "
        "(locations: 1, users: 3)"
    ) in err.splitlines()


async def test_a_database_without_the_schema_gets_a_clear_message(empty_database, tmp_path):
    for args in (("import", EXAMPLE), ("import", EXAMPLE, "--dry-run"), ("export",)):
        code, out, err = await e911d(empty_database, "directory", *args)
        assert (code, out) == (1, "")
        assert "Traceback" not in err
        assert err.strip() == (
            "e911d: database: this database has no e911d directory tables (accounts, users, "
            "locations, ip_groups, ip_group_networks missing): run `e911d migrate` first"
        )


async def test_rows_written_by_another_system_round_trip_without_losing_networks(db, tmp_path):
    conn = await asyncpg.connect(db)
    try:
        await conn.execute(
            "INSERT INTO accounts (account_id) VALUES ('sql');"
            "INSERT INTO ip_groups (account_id, ip_group_id, name) VALUES ('sql', 'g', 'G');"
            "INSERT INTO ip_group_networks (account_id, ip_group_id, network) VALUES "
            "('sql', 'g', '203.0.113.0/24'), ('sql', 'g', '2001:db8::/48')"
        )
    finally:
        await conn.close()
    code, exported, err = await e911d(db, "directory", "export")
    assert code == 0, err
    group = yaml.safe_load(exported)["accounts"][0]["ip_groups"][0]
    assert group["addresses"] == ["203.0.113.0/24", "2001:db8::/48"]
    before = await row_versions(db)
    code, out, err = await e911d(db, "directory", "import", write(tmp_path / "e.yaml", exported))
    assert code == 0, err
    assert plan_lines(out) == []
    assert await row_versions(db) == before
    assert await counts(db) == {**EMPTY, "accounts": 1, "ip_groups": 1, "ip_group_networks": 2}
