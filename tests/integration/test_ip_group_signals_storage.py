"""An IP group's bssids, switches and locating on a real PostgreSQL: stored by the
projector, loaded into the account's snapshot, noticed as a directory change, and
carried through a directory export and import unchanged."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import asyncpg

from e911d.daemon.commands.directory_file import (
    Stored,
    export_document,
    make_plan,
    parse,
    read_rows,
    render,
    validate,
)
from e911d.daemon.core.events import Address, Coordinates, IpGroupUpserted, LocationUpserted
from e911d.daemon.core.ip import parse_address_item
from e911d.daemon.core.model import MatchedBy
from e911d.daemon.core.network import SwitchRef
from e911d.daemon.store.db import PoolConfig, migrate, open_pool
from e911d.daemon.store.directory import DirectoryCache, apply_change

HQ = LocationUpserted(
    "acme", "hq", "HQ", Address("1 Main St", "Springfield", "US"), Coordinates(39.78, -89.65)
)
WIFI = IpGroupUpserted(
    "acme",
    "hq-wifi",
    "HQ Wi-Fi",
    "hq",
    (),
    (),
    bssids=("f06e0bc2032*", "f06e0bc20410"),
    switches=(SwitchRef("001b54aabbcc", "gi1/0/12"), SwitchRef("core-sw1")),
)
VPN = IpGroupUpserted(
    "acme",
    "vpn",
    "VPN egress",
    None,
    tuple(parse_address_item("203.0.113.0/28")),
    ("203.0.113.0/28",),
    locating=False,
)


async def _version(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT version FROM directory_versions WHERE account_id='acme'")
    assert isinstance(value, int)
    return value


async def test_signals_are_stored_loaded_and_a_change_of_bssids_alone_is_noticed(database):
    async with open_pool(PoolConfig(database, 1, 2)) as pool, pool.acquire() as conn:
        await migrate(conn)
        for change in (HQ, WIFI, VPN):
            await apply_change(conn, change)
        row = await conn.fetchrow(
            "SELECT bssids, switches, locating FROM ip_groups WHERE ip_group_id = 'hq-wifi'"
        )
        assert row["bssids"] == ["f06e0bc2032*", "f06e0bc20410"]
        assert row["switches"] == [
            {"chassis_id": "001b54aabbcc", "port_id": "gi1/0/12"},
            {"chassis_id": "core-sw1"},
        ]
        assert row["locating"] is True
        vpn_locating = "SELECT locating FROM ip_groups WHERE ip_group_id = 'vpn'"
        assert await conn.fetchval(vpn_locating) is False

        cache = DirectoryCache()
        v1 = await _version(conn)
        snap = (await cache.get_many(conn, {"acme": v1}))["acme"]
        assert snap.locations["hq"].coordinates == (39.78, -89.65)
        # A group with no network at all still loads (ip_groups_of LEFT JOINs networks).
        hit = snap.match_bssid("f06e0bc20321")
        assert hit is not None
        assert (hit.signal, hit.location_ids, hit.key) == (
            MatchedBy.BSSID,
            frozenset({"hq"}),
            "f06e0bc2032*",
        )
        port = snap.match_port("001b54aabbcc", "gi1/0/12")
        assert port is not None and port.group_ids == ("hq-wifi",)
        assert snap.match_switch("core-sw1") is not None
        vpn = snap.match(parse_address_item("203.0.113.5")[0].network_address)
        assert vpn is not None and vpn.locating is False and vpn.group_ids == ("vpn",)

        listener = await asyncpg.connect(database)
        notices: asyncio.Queue[str] = asyncio.Queue()
        await listener.add_listener("e911_directory", lambda *args: notices.put_nowait(args[3]))
        try:
            moved = dataclasses.replace(WIFI, bssids=("a0b1c2d3e4f5",))
            await apply_change(conn, moved)
            notice = json.loads(await asyncio.wait_for(notices.get(), 10))
            assert notice == {"k": "directory", "a": "acme"}
        finally:
            await listener.close()
        v2 = await _version(conn)
        assert v2 > v1
        reloaded = (await cache.get_many(conn, {"acme": v2}))["acme"]
        assert reloaded.match_bssid("f06e0bc20321") is None
        assert reloaded.match_bssid("a0b1c2d3e4f5") is not None
        assert reloaded.match_port("001b54aabbcc", "gi1/0/12") is not None


async def test_an_export_imports_back_to_the_same_stored_state(database):
    async with open_pool(PoolConfig(database, 1, 1)) as pool, pool.acquire() as conn:
        await migrate(conn)
        await conn.execute("INSERT INTO accounts (account_id) VALUES ('acme')")
        for change in (HQ, WIFI, VPN):
            await apply_change(conn, change)
        rows = await read_rows(conn, ["acme"])
        document = export_document(rows).document
        groups = {g["ip_group_id"]: g for g in document["accounts"][0]["ip_groups"]}
        assert groups["hq-wifi"]["bssids"] == ["f0:6e:0b:c2:03:2*", "f0:6e:0b:c2:04:10"]
        assert groups["hq-wifi"]["switches"][0]["chassis_id"] == "00:1b:54:aa:bb:cc"
        assert groups["vpn"]["locating"] is False and "locating" not in groups["hq-wifi"]
        for fmt in ("yaml", "json"):
            imported = validate(parse(render(document, fmt), fmt)).directory
            assert imported is not None
            assert make_plan(imported, Stored.of(rows), prune=True).steps == ()

        # Writing the imported groups stores exactly what was there.
        before = [dict(r) for r in await conn.fetch("SELECT * FROM ip_groups ORDER BY 2")]
        async with conn.transaction():
            await conn.execute("DELETE FROM ip_groups")
            for group in imported.accounts[0].ip_groups:
                await apply_change(conn, group)
        after = [dict(r) for r in await conn.fetch("SELECT * FROM ip_groups ORDER BY 2")]
        strip = ("updated_at",)
        assert [{k: v for k, v in r.items() if k not in strip} for r in after] == [
            {k: v for k, v in r.items() if k not in strip} for r in before
        ]
