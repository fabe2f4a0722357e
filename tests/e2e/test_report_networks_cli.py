"""`e911d report networks` as an administrator runs it, against a running daemon that
recorded networks nobody configured through its real checks: the formats, the
suggested groups as a file that `e911d directory import` accepts, and that importing
it really locates those sessions (docs/spec.md#networks-nobody-configured)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from e911d.daemon.commands.networks.render import CSV_COLUMNS
from tests.e2e.cli import run_cli
from tests.support import Producer, TopicWatcher, ce, directory, eventually, now, wait_consumed

pytestmark = pytest.mark.e2e

WAIT = 30.0
OFFICE = ("192.0.2.7", "192.0.2.8", "192.0.2.9")  # a floor nobody configured
AP = "f0:6e:0b:c2:03:99"
GROUP = "suggested-ip-192.0.2.0-24"
PORT = {"chassis_id": "00-1B-54-AA-BB-CC", "port_id": "Gi1/0/30"}
PORT_KEY = "001b54aabbcc\x1fgi1/0/30"  # as stored: normalised, joined by U+001F
PORT_GROUP = "suggested-port-00:1b:54:aa:bb:cc-gi1/0/30"


def _login(user: str, session: str, ip: str, **network: Any) -> bytes:
    data: dict[str, Any] = {"account_id": "acme", "user_id": user, "session_id": session}
    data["ip"] = ip
    if network:
        data["network"] = network
    return ce("e911.session.login", data, now() - dt.timedelta(seconds=30))


async def _sightings(database: str) -> int:
    conn = await asyncpg.connect(database)
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM unconfigured_network_sightings")
        return n
    finally:
        await conn.close()


async def test_report_then_import_the_suggested_groups_locates_the_sessions(
    broker, topics, make_settings, start_app, database, tmp_path: Path
):
    running = await start_app(make_settings())
    app = running.app
    users: dict[str, tuple[bool, str | None]] = {f"u{i}": (True, "hq") for i in range(1, 7)}
    users["u7"] = (True, "lab")  # lab has no network: undetermined, no alert
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(users=users), key="acme")
        await wait_consumed(app, topics.directory_events, "e911.user.upserted", 7)
        for i, ip in enumerate(OFFICE, start=1):
            await p.send(topics.session_events, _login(f"u{i}", f"s{i}", ip), key=f"u{i}")
        await p.send(topics.session_events, _login("u4", "s4", "192.0.2.50", bssid=AP), key="u4")
        await p.send(topics.session_events, _login("u7", "s7", "198.18.0.5", switch=PORT), "u7")
        # Users assigned hq, on a network no group locates: all_locations mismatches.
        await alerts.wait_count("e911.alert.raised", 4, within=WAIT)
        await eventually(lambda: _sightings_are(database, 5), within=WAIT)
        conn = await asyncpg.connect(database)
        try:
            # What users confirmed (the learning that fills this table is built apart).
            await conn.execute(
                """INSERT INTO confirmed_networks VALUES
                   ('acme', 'u1', 'ip_prefix', '192.0.2.0/24', 'hq', now(), now()),
                   ('acme', 'u2', 'ip_prefix', '192.0.2.0/24', 'hq', now(), now()),
                   ('acme', 'u3', 'ip_prefix', '192.0.2.0/24', 'hq', now(), now()),
                   ('acme', 'u4', 'ip_prefix', '192.0.2.0/24', 'hq', now(), now()),
                   ('acme', 'u5', 'ip_prefix', '192.0.2.0/24', 'home', now(), now()),
                   ('acme', 'u4', 'bssid', 'f06e0bc20399', 'hq', now(), now()),
                   ('acme', 'u6', 'bssid', 'f06e0bc20399', 'home', now(), now()),
                   ('acme', 'u7', 'switch_port', $1, 'lab', now(), now())""",
                PORT_KEY,
            )
        finally:
            await conn.close()

        code, out, err = await run_cli(database, "report", "networks")
        assert code == 0, err
        assert err == ""
        lines = out.splitlines()
        assert "Account acme" in lines
        office = lines.index("  192.0.2.0/24  (ip_prefix)  users 3  sessions 3  days 1")
        assert lines[office + 1] == (
            "    confirmed: hq (Headquarters) 4/5 80%, home (Home office) 1/5 20%  agreement 80%"
        )
        assert f"  {AP}  (bssid)  users 1  sessions 1  days 1" in lines

        code, out, err = await run_cli(database, "report", "networks", "--format", "json")
        assert code == 0, err
        networks = json.loads(out)["networks"]
        assert [(n["network"], n["users"], n["agreement"]) for n in networks] == [
            ("192.0.2.0/24", 3, 0.8),
            (AP, 1, 0.5),
            ("00:1b:54:aa:bb:cc port gi1/0/30", 1, 1.0),  # ties: by kind, then key
        ]
        code, out, err = await run_cli(
            database, "report", "networks", "--format", "csv", "--min-users", "2"
        )
        assert code == 0, err
        rows = list(csv.reader(io.StringIO(out)))
        assert rows[0] == list(CSV_COLUMNS)
        assert [r[2] for r in rows[1:]] == ["192.0.2.0/24"]
        code, out, err = await run_cli(database, "report", "networks", "--account", "beta")
        assert (code, "(no networks)" in out) == (0, True)

        code, out, err = await run_cli(database, "report", "networks", "--format", "directory")
        assert code == 0, err
        suggested = yaml.safe_load(out)
        [account] = suggested["accounts"]
        assert account["e911_recommendations"] is True  # repeated: the import keeps it
        # Only the network users agree on (80 %); the access point's 50 % is not enough.
        assert [
            (g["ip_group_id"], g["location_id"], g["addresses"]) for g in account["ip_groups"]
        ] == [(GROUP, "hq", ["192.0.2.0/24"]), (PORT_GROUP, "lab", [])]
        assert account["ip_groups"][1]["switches"] == [
            {"chassis_id": "00:1b:54:aa:bb:cc", "port_id": "gi1/0/30"}
        ]
        file = tmp_path / "suggested.yaml"
        file.write_text(out)
        code, out, err = await run_cli(database, "directory", "import", file, "--dry-run")
        assert code == 0, err
        assert f"+ ip_group acme/{GROUP}" in out
        assert f"+ ip_group acme/{PORT_GROUP}" in out
        assert "accounts: 0 created, 0 updated, 1 unchanged" in out  # the toggle is kept
        assert "dry run: would apply 2 changes, nothing written" in out
        # Before the import only u7's own confirmation locates s7 (no group maps the port).
        code, out, err = await run_cli(database, "explain", "--session", "s7", "--json")
        explained = json.loads(out)
        assert (code, explained["outcome"], explained["matched_by"]) == (
            0,
            "match",
            "user_confirmed",
        ), err
        code, out, err = await run_cli(database, "directory", "import", file)
        assert code == 0, err
        # The daemon re-evaluates at once: the office's sessions now match hq (s4 too:
        # its access point matches nothing, so its IP decides).
        resolved = await alerts.wait_count("e911.alert.resolved", 4, within=WAIT)
        assert {(m.data["session_id"], m.data["reason"]) for m in resolved} == {
            (f"s{i}", "location_matched") for i in range(1, 5)
        }
        # The port's session (no alert before or after) is now located at lab.
        code, out, err = await run_cli(database, "explain", "--session", "s7", "--json")
        explained = json.loads(out)
        assert (code, explained["outcome"], explained["matched_by"]) == (0, "match", "switch_port")
    # Configured now: listed as such, and no longer suggested.
    code, out, err = await run_cli(database, "report", "networks", "--format", "json")
    assert code == 0, err
    office_now = next(n for n in json.loads(out)["networks"] if n["network"] == "192.0.2.0/24")
    assert office_now["configured_now"] is True
    code, out, err = await run_cli(database, "report", "networks", "--format", "directory")
    assert yaml.safe_load(out) == {"accounts": []}
    assert await running.stop() == 0


async def _sightings_are(database: str, n: int) -> bool:
    return await _sightings(database) == n


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (("--since", "0d"), "--since"),
        (("--since", "a week"), "--since"),
        (("--min-users", "0"), "--min-users"),
        (("--min-users", "many"), "--min-users"),
        (("--format", "yaml"), "--format"),
        (("--account",), "--account"),
    ],
)
async def test_bad_usage_exits_2_before_connecting(
    args: tuple[str, ...], argument: str, unused_port: int
) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{unused_port}/e911d"
    code, out, err = await run_cli(dsn, "report", "networks", *args)
    assert code == 2
    assert out == ""
    assert f"argument {argument}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (("--account", "acme", "networks"), "--account"),
        (("--format", "json", "networks"), "--format"),
        (("--since", "2d", "networks", "--min-users", "2"), "--since"),
    ],
)
async def test_report_options_before_networks_are_refused_not_ignored(
    args: tuple[str, ...], argument: str, unused_port: int
) -> None:
    """`e911d report --account A networks` would otherwise list every account."""
    dsn = f"postgresql://postgres@127.0.0.1:{unused_port}/e911d"
    code, out, err = await run_cli(dsn, "report", *args)
    assert code == 2
    assert out == ""
    assert f"argument {argument}: give the options of `report networks` after" in err


async def test_a_database_never_migrated_is_a_clear_error(empty_database: str) -> None:
    code, out, err = await run_cli(empty_database, "report", "networks")
    assert code == 1
    assert out == ""
    assert "run `e911d migrate` first" in err
