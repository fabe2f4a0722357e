"""`e911d explain` as a support engineer runs it: the console script, configured by
environment, reading a real database filled the way the daemon fills it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from e911d.daemon.core.events import (
    AccountUpserted,
    Address,
    DirectoryChange,
    IpGroupUpserted,
    LocationUpserted,
    UserUpserted,
)
from e911d.daemon.core.ip import parse_address_item
from e911d.daemon.core.model import fingerprint_of
from e911d.daemon.store.db import PoolConfig, connect_pool, migrate
from e911d.daemon.store.directory import apply_change
from tests.e2e.cli import E911D, cli_env, kill, run_cli

pytestmark = pytest.mark.e2e

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
ELSEWHERE = "192.0.2.77"


async def run_explain(dsn: str, *args: str) -> tuple[int, str, str]:
    return await run_cli(dsn, "explain", *args, within=30)


async def explain_json(dsn: str, user: str, ip: str, account: str = "acme") -> dict[str, Any]:
    code, out, err = await run_explain(
        dsn, "--account", account, "--user", user, "--ip", ip, "--json"
    )
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


async def explain_text(dsn: str, user: str, ip: str, account: str = "acme") -> str:
    code, out, err = await run_explain(dsn, "--account", account, "--user", user, "--ip", ip)
    assert code == 0, err
    assert "Traceback" not in err
    return out


ADDRESS = Address(street="1 Main St", city="Springfield", country="US")


def _group(gid: str, location_id: str | None, *items: str) -> IpGroupUpserted:
    nets = [n for item in items for n in parse_address_item(item)]
    return IpGroupUpserted("acme", gid, gid, location_id, tuple(nets), tuple(items))


DIRECTORY: list[DirectoryChange] = [
    AccountUpserted("acme", True),
    AccountUpserted("quiet", False),
    LocationUpserted("acme", "hq", "Headquarters", ADDRESS, None),
    LocationUpserted("acme", "home", "Home office", ADDRESS, None),
    LocationUpserted("acme", "lab", "Lab", ADDRESS, None),
    LocationUpserted("quiet", "hq", "Headquarters", ADDRESS, None),
    _group("hq-net", "hq", "203.0.113.0/24"),
    _group("home-net", "home", "198.51.100.0-198.51.100.255"),
    _group("wide", None, "198.51.0.0/16"),
    UserUpserted("acme", "u1", False, "hq"),
    UserUpserted("acme", "nowhere", False, None),
    UserUpserted("quiet", "u1", False, "hq"),
]


@pytest.fixture
async def directory_db(database: str) -> str:
    """acme (toggle on): hq (203.0.113.0/24), home (198.51.100.0/24 given as a range,
    inside an unbound /16), lab (no IP group); users u1 (own toggle off, at hq) and
    nowhere (no location). quiet (toggle off): u1 (own toggle off). Plus a session of
    acme/u1 with an open alert, as the daemon would have left them."""
    # Through the daemon's pool: its connections know how to store jsonb addresses.
    pool = await connect_pool(PoolConfig(database, 1, 1))
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            for change in DIRECTORY:
                await apply_change(conn, change)
            t = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
            await conn.execute(
                "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
                " last_event_at, kafka_partition) VALUES ('s1', 'acme', 'u1', $1, $2, $2, 0)",
                HOME_IP,
                t,
            )
            await conn.execute(
                "INSERT INTO alerts (alert_id, session_id, account_id, user_id, kafka_partition,"
                " fingerprint, episode, payload, raised_at)"
                " VALUES ('alert-1', 's1', 'acme', 'u1', 0, $1, 1, '{}'::jsonb, $2)",
                fingerprint_of("hq", ["home"]),
                t,
            )
    finally:
        await pool.close()
    return database


async def test_mismatch_ip_group_match(directory_db: str) -> None:
    data = await explain_json(directory_db, "u1", HOME_IP)
    fp = fingerprint_of("hq", ["home"])
    assert data["outcome"] == "mismatch"
    assert data["recommendation"] == {
        "kind": "ip_group_match",
        "locations": [{"location_id": "home", "name": "Home office"}],
    }
    assert data["fingerprint"] == fp
    assert data["effective_setting"] == {
        "enabled": True,
        "reason": "on: the account toggle is on and overrides the user's own (off)",
    }
    assert data["assigned_location"]["location_id"] == "hq"
    assert data["assigned_location"]["name"] == "Headquarters"
    groups = {g["ip_group_id"]: g for g in data["containing_groups"]}
    assert set(groups) == {"home-net", "wide"}
    assert groups["home-net"]["network"] == "198.51.100.0/24"
    assert groups["home-net"]["prefix_len"] == 24
    assert groups["home-net"]["address"] == "198.51.100.0-198.51.100.255"
    assert groups["home-net"]["winner"] is True
    assert groups["wide"]["counted"] is False
    assert groups["wide"]["ignored_reason"] == "tied to no location: ignored by the rules"
    assert data["winner"]["prefix_len"] == 24
    assert data["explanation"] == (
        "mismatch: the IP is on the network of Home office (198.51.100.0/24, /24) "
        "but the assigned location is Headquarters"
    )
    assert data["sessions"] == [
        {
            "session_id": "s1",
            "ip": HOME_IP,
            "same_ip": True,
            "logged_in_at": "2026-11-26T09:00:00Z",
            "open_alert": {
                "alert_id": "alert-1",
                "fingerprint": fp,
                "raised_at": "2026-11-26T09:00:00Z",
                "same_fingerprint": True,
            },
            "snoozed_until": None,
        }
    ]
    text = await explain_text(directory_db, "u1", HOME_IP)
    assert "Outcome      mismatch" in text
    assert "Recommended  ip_group_match: Home office (home)" in text
    assert f"Fingerprint  {fp}" in text
    assert "Why          mismatch: the IP is on the network of Home office" in text
    assert "home-net (home-net) -> home (Home office)  <- winner" in text
    assert "open alert alert-1 (same fingerprint as above)" in text


async def test_a_dismissed_mismatch_shows_its_snooze(directory_db: str) -> None:
    """ "Why did I get no alert?": the user dismissed this mismatch a minute ago."""
    conn = await asyncpg.connect(directory_db)
    try:
        await conn.execute(
            "UPDATE alerts SET resolved_at = now() - interval '1 minute', reason = 'dismissed'"
        )
        until = await conn.fetchval("SELECT resolved_at + interval '1 hour' FROM alerts")
    finally:
        await conn.close()
    data = await explain_json(directory_db, "u1", HOME_IP)
    session = data["sessions"][0]
    assert session["open_alert"] is None
    assert dt.datetime.fromisoformat(session["snoozed_until"]) == until
    text = await explain_text(directory_db, "u1", HOME_IP)
    assert "snoozed until" in text and "the user dismissed this mismatch" in text
    # Another IP, another mismatch: not snoozed.
    assert (await explain_json(directory_db, "u1", ELSEWHERE))["sessions"][0][
        "snoozed_until"
    ] is None


async def test_mismatch_all_locations(directory_db: str) -> None:
    data = await explain_json(directory_db, "u1", ELSEWHERE)
    assert data["outcome"] == "mismatch"
    assert data["recommendation"]["kind"] == "all_locations"
    assert [loc["location_id"] for loc in data["recommendation"]["locations"]] == [
        "hq",
        "home",
        "lab",
    ]
    assert data["fingerprint"] == fingerprint_of("hq", ["hq", "home", "lab"])
    assert data["containing_groups"] == []
    assert data["winner"] is None
    text = await explain_text(directory_db, "nowhere", ELSEWHERE)
    assert "Assigned     none" in text
    assert "Recommended  all_locations: Headquarters (hq), Home office (home), Lab (lab)" in text
    assert "the user has no assigned location and the IP is on none" in text


async def test_match_and_ipv4_mapped_input(directory_db: str) -> None:
    data = await explain_json(directory_db, "u1", "::ffff:" + HQ_IP)
    assert data["outcome"] == "match"
    assert data["ip"] == {"input": "::ffff:" + HQ_IP, "normalized": HQ_IP, "ipv4_mapped": True}
    assert data["recommendation"] is None
    assert data["fingerprint"] is None
    assert data["winner"]["locations"] == [{"location_id": "hq", "name": "Headquarters"}]
    text = await explain_text(directory_db, "u1", HQ_IP)
    assert "Outcome      match" in text
    assert "which is the assigned location" in text
    assert "Fingerprint" not in text


async def test_disabled(directory_db: str) -> None:
    data = await explain_json(directory_db, "u1", HOME_IP, account="quiet")
    assert data["outcome"] == "disabled"
    assert data["effective_setting"] == {
        "enabled": False,
        "reason": "off: the account toggle is off, so the user's own toggle decides (off)",
    }
    assert data["recommendation"] is None
    text = await explain_text(directory_db, "u1", HOME_IP, account="quiet")
    assert "Outcome      disabled" in text
    assert "Account      quiet: account toggle off" in text


async def test_unknown_user_and_unknown_account_exit_0(directory_db: str) -> None:
    data = await explain_json(directory_db, "ghost", HOME_IP)
    assert data["outcome"] == "unknown_user"
    assert data["user"] == {
        "user_id": "ghost",
        "known": False,
        "e911_recommendations": None,
        "e911_location_id": None,
    }
    assert data["effective_setting"]["enabled"] is None
    text = await explain_text(directory_db, "u1", HOME_IP, account="nope")
    assert "Account      nope: not in the directory" in text
    assert "Outcome      unknown_user" in text


async def test_invalid_ip_exits_2_naming_the_value(directory_db: str) -> None:
    for bad in ("010.0.0.1", "fe80::1%eth0", "banana"):
        code, out, err = await run_explain(
            directory_db, "--account", "acme", "--user", "u1", "--ip", bad
        )
        assert code == 2
        assert out == ""
        assert repr(bad) in err
        assert "Traceback" not in err


async def test_missing_schema_exits_1_and_says_run_migrate(empty_database: str) -> None:
    code, out, err = await run_explain(
        empty_database, "--account", "acme", "--user", "u1", "--ip", HQ_IP
    )
    assert code == 1
    assert out == ""
    assert "run `e911d migrate`" in err
    assert "Traceback" not in err


async def test_unreachable_database_exits_1(unused_port: int) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{unused_port}/e911d"
    code, out, err = await run_explain(dsn, "--account", "acme", "--user", "u1", "--ip", HQ_IP)
    assert code == 1
    assert out == ""
    assert "e911d: database:" in err
    assert "Traceback" not in err


AP = "F0-6E-0B-C2-03-21"


async def _sql(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_access_point_decides_over_the_ip(directory_db: str) -> None:
    """Lab's access points (a wildcard pattern) and one switch port, stored as the
    directory import stores them (normalised); u1 sits at hq, on hq's network."""
    await _sql(
        directory_db,
        "INSERT INTO ip_groups (account_id, ip_group_id, name, location_id, addresses, bssids,"
        " switches) VALUES ('acme', 'ap-lab', 'Lab Wi-Fi', 'lab', '{}',"
        ' \'{f06e0bc2032*}\', \'[{"chassis_id": "001b54aabbcc", "port_id": "gi1/0/12"}]\')',
    )
    code, out, err = await run_explain(
        directory_db,
        *("--account", "acme", "--user", "u1", "--ip", HQ_IP, "--json"),
        *("--bssid", AP, "--switch-chassis", "00:1B:54:AA:BB:CC", "--switch-port", "Gi1/0/13"),
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["outcome"] == "mismatch"
    assert data["matched_by"] == "bssid"
    assert data["recommendation"]["locations"] == [{"location_id": "lab", "name": "Lab"}]
    assert [(s["signal"], s["matched"], s["decided"]) for s in data["signals"]] == [
        ("bssid", True, True),
        ("switch_port", False, False),
        ("switch", False, False),
        ("ip", True, False),
    ]
    assert data["signals"][0]["value"] == "f0:6e:0b:c2:03:21"
    assert data["signals"][0]["key"] == "f0:6e:0b:c2:03:2*"
    assert data["explanation"] == (
        "mismatch: the client's access point f0:6e:0b:c2:03:21 belongs to Lab (through the "
        "pattern f0:6e:0b:c2:03:2*) but the assigned location is Headquarters"
    )
    # The port that is in the group decides when the client reports no access point.
    code, out, err = await run_explain(
        directory_db,
        *("--account", "acme", "--user", "u1", "--ip", HQ_IP),
        *("--switch-chassis", "001b.54aa.bbcc", "--switch-port", "GI1/0/12"),
    )
    assert code == 0, err
    assert "switch_port  00:1b:54:aa:bb:cc gi1/0/12  matched 00:1b:54:aa:bb:cc gi1/0/12" in out
    assert "<- decided" in out and "Matched by   switch_port" in out
    # --session reads the network the stored session last reported.
    await _sql(directory_db, "UPDATE sessions SET bssid = 'f06e0bc20321' WHERE session_id = 's1'")
    code, out, err = await run_explain(directory_db, "--session", "s1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["user"]["user_id"], data["ip"]["normalized"]) == ("u1", HOME_IP)
    assert data["matched_by"] == "bssid"
    assert data["fingerprint"] == fingerprint_of("hq", ["lab"])
    # The open alert of s1 was raised for home: this verdict would supersede it.
    assert data["sessions"][0]["open_alert"]["same_fingerprint"] is False
    assert err == ""
    await _sql(directory_db, "UPDATE sessions SET ended_at = now() WHERE session_id = 's1'")
    code, out, err = await run_explain(directory_db, "--session", "s1", "--json")
    assert code == 0, err
    assert json.loads(out)["matched_by"] == "bssid"
    assert "session 's1' has ended" in err


async def test_a_non_locating_network_is_undetermined(directory_db: str) -> None:
    await _sql(directory_db, "UPDATE ip_groups SET locating = false WHERE ip_group_id = 'home-net'")
    data = await explain_json(directory_db, "u1", HOME_IP)
    assert data["outcome"] == "undetermined"
    assert data["matched_by"] == "ip"
    assert data["fingerprint"] is None
    assert data["signals"][0]["locating"] is False
    assert data["explanation"].startswith(
        "undetermined: the IP's network 198.51.100.0/24 is a non-locating network"
    )
    assert "else location_undetermined" in data["explanation"]


async def test_bad_network_input_exits_2(directory_db: str) -> None:
    base = ("--account", "acme", "--user", "u1", "--ip", HQ_IP)
    for args, message in (
        (("--bssid", "f0:6e:0b:c2:03"), "--bssid 'f0:6e:0b:c2:03' is not a MAC address"),
        (("--switch-port", "Gi1/0/12"), "--switch-port needs --switch-chassis"),
        (("--session", "s1"), "--session takes the account, user, IP and network"),
    ):
        code, out, err = await run_explain(directory_db, *base, *args)
        assert code == 2, err
        assert out == ""
        assert message in err
        assert "Traceback" not in err
    code, out, err = await run_explain(directory_db, "--session", "nope")
    assert (code, out) == (2, "")
    assert "--session 'nope': no such session" in err
    code, out, err = await run_explain(directory_db, "--account", "acme", "--ip", HQ_IP)
    assert (code, out) == (2, "")
    assert "--user required (or --session SESSION_ID)" in err


async def test_a_configured_geoip_database_is_used_as_the_daemon_uses_it(
    directory_db: str, tmp_path: Path
) -> None:
    """Explain geolocates like the daemon: lab (Paris) has no network, the address is in
    Tokyo, so the located offices are recommended nearest first. A database that cannot
    be opened is refused with exit 1 and the setting's name, not a traceback."""
    from tests.geoip_db import NEW_YORK, PARIS, write_mmdb

    conn = await asyncpg.connect(directory_db)
    try:
        await conn.execute(
            "UPDATE locations SET lat = $2, lon = $3"
            " WHERE account_id = 'acme' AND location_id = $1",
            "lab",
            *PARIS,
        )
        await conn.execute(
            "UPDATE locations SET lat = $2, lon = $3"
            " WHERE account_id = 'acme' AND location_id = $1",
            "hq",
            *NEW_YORK,
        )
        await conn.execute(
            "INSERT INTO users (account_id, user_id, e911_recommendations, e911_location_id)"
            " VALUES ('acme', 'roamer', true, 'lab')"
        )
    finally:
        await conn.close()
    args = ("explain", "--account", "acme", "--user", "roamer", "--ip", "2001:db8:7::1", "--json")

    async def run(database_file: Path) -> tuple[int, str, str]:
        env = {**cli_env(directory_db), "E911_GEOIP__DATABASE": str(database_file)}
        proc = await asyncio.create_subprocess_exec(
            E911D, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            await kill(proc)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await run(write_mmdb(tmp_path / "city.mmdb"))
    assert code == 0, err
    data = json.loads(out)
    assert data["outcome"] == "mismatch"
    assert data["matched_by"] == "geoip"
    assert data["recommendation"]["kind"] == "nearest_locations"
    assert [loc["location_id"] for loc in data["recommendation"]["locations"]] == ["lab", "hq"]
    assert data["geo"]["distance_km"] > 9000

    code, out, err = await run(tmp_path / "missing.mmdb")
    assert code == 1
    assert "E911_GEOIP__DATABASE" in err
    assert "Traceback" not in err
    assert out == ""


async def test_rows_another_system_wrote_unnormalised_are_read_as_the_daemon_reads_them(
    directory_db: str,
) -> None:
    """Another system's SQL may store a BSSID and a switch in any spelling: the daemon's
    snapshot normalises them again, and explain reads them with the same functions."""
    await _sql(
        directory_db,
        "INSERT INTO ip_groups (account_id, ip_group_id, name, location_id, addresses, bssids,"
        " switches) VALUES ('acme', 'raw-lab', 'Lab (raw)', 'lab', '{}',"
        " '{F0-6E-0B-C2-03-21}',"
        """ '[{"chassis_id": "00:1B:54:AA:BB:CC", "port_id": "Gi1/0/7"}]')""",
    )
    for extra, signal in (
        (("--bssid", "f06e.0bc2.0321"), "bssid"),
        (("--switch-chassis", "001b54aabbcc", "--switch-port", "gi1/0/7"), "switch_port"),
    ):
        code, out, err = await run_explain(
            directory_db, *("--account", "acme", "--user", "u1", "--ip", HQ_IP, "--json"), *extra
        )
        assert code == 0, err
        data = json.loads(out)
        assert data["matched_by"] == signal
        assert data["recommendation"]["locations"] == [{"location_id": "lab", "name": "Lab"}]
