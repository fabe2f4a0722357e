"""`e911d directory lint` as an operator runs it: the console script in a subprocess,
configured by environment, on a file and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest

from tests.e2e.cli import E911D, cli_env, kill, migrated, run_cli

EXAMPLE = Path(__file__).parents[2] / "docs" / "directory.example.yaml"

pytestmark = pytest.mark.e2e

BROKEN = textwrap.dedent(
    """\
    accounts:
      - account_id: acme
        e911_recommendations: true
        locations:
          - location_id: hq
            name: HQ
            address: {street: 1 Main St, city: X, region: Y, postal_code: "1", country: US}
        ip_groups:
          - {ip_group_id: g, name: G, location_id: hq, addresses: [10.0.0.0/8]}
        users:
          - {user_id: u1, e911_location_id: hq}
          - {user_id: u2, e911_location_id: attic}
      - account_id: calm
        locations:
          - location_id: hq
            name: HQ
            address: {street: 1 Main St, city: X, region: Y, postal_code: "1", country: US}
        ip_groups:
          - {ip_group_id: g, name: G, location_id: hq, addresses: [10.0.0.0/8]}
        users:
          - {user_id: u1, e911_location_id: hq}
    """
)


async def e911d(dsn: str, *args: str | Path, **extra: str) -> tuple[int, str, str]:
    return await run_cli(dsn, "directory", "lint", *args, E911_LOG__FORMAT="json", **extra)


@pytest.fixture
async def db(database: str) -> str:
    return await migrated(database)


async def test_file_mode_exit_codes_json_and_accounts(tmp_path: Path) -> None:
    broken = tmp_path / "d.yaml"
    broken.write_text(BROKEN, "utf-8")
    nowhere = "postgresql://nobody@127.0.0.1:1/none"  # --file never connects

    code, out, _ = await e911d(nowhere, "--file", broken)
    assert code == 1
    assert out.splitlines()[0].split()[:4] == [
        "error",
        "user_location_missing",
        "acme",
        "accounts[0].users[1]",
    ]
    assert out.splitlines()[-1] == "1 error, 0 warnings in 2 accounts"

    code, out, _ = await e911d(nowhere, "--file", broken, "--account", "calm")
    assert (code, out) == (0, "no findings in 1 account\n")

    code, out, _ = await e911d(nowhere, "--file", broken, "--json", "--account", "acme")
    assert code == 1
    doc = json.loads(out)
    assert [f["path"] for f in doc["findings"]] == ["accounts[0].users[1]"]
    assert doc["summary"] == {"errors": 1, "warnings": 0, "accounts": 1}

    code, out, err = await e911d(nowhere, "--file", tmp_path / "missing.yaml")
    assert (code, out) == (1, "")
    assert "cannot read the file" in err


async def test_a_bad_configuration_exits_2(tmp_path: Path) -> None:
    code, _, err = await e911d("x", "--file", EXAMPLE, E911_HTTP__PORT="not-a-port")
    assert code == 2
    assert "E911_HTTP__PORT" in err


async def test_database_mode_after_an_import(db: str, tmp_path: Path) -> None:
    code, out, _ = await e911d(db)
    assert (code, out) == (0, "no findings in 0 accounts\n")
    # The shipped example imports cleanly; lint it from the database and from the file.
    imported = await asyncio.create_subprocess_exec(
        E911D, "directory", "import", str(EXAMPLE), env=cli_env(db)
    )
    try:
        assert await asyncio.wait_for(imported.wait(), 60) == 0
    finally:
        await kill(imported)
    from_db = await e911d(db, "--json")
    exported = tmp_path / "export.yaml"
    done = await asyncio.create_subprocess_exec(
        E911D, "directory", "export", "-o", str(exported), env=cli_env(db)
    )
    try:
        assert await asyncio.wait_for(done.wait(), 60) == 0
    finally:
        await kill(done)
    assert from_db == await e911d(db, "--json", "--file", exported)
    assert from_db[0] in (0, 1)
    assert json.loads(from_db[1])["summary"]["accounts"] >= 1

    code, out, err = await e911d(db, "--account", "no-such-account")
    assert (code, out) == (1, "")
    assert "no account 'no-such-account' in the database" in err


async def test_an_unreachable_database_exits_1_naming_it(tmp_path: Path) -> None:
    code, out, err = await e911d("postgresql://nobody@127.0.0.1:1/none")
    assert (code, out) == (1, "")
    assert err.splitlines()[-1].startswith("e911d: database: database_connect:")
