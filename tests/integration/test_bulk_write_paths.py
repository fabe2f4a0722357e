"""The set-based writes (arrays through ``unnest``) with odd input: unicode, NULLs,
maximal fields. Locations and IP groups in bulk leave exactly what one statement per
event leaves; session rows come back as they were saved."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random

import asyncpg

from e911d.daemon.core.events import (
    AccountDeleted,
    AccountUpserted,
    Address,
    Coordinates,
    DirectoryChange,
    IpGroupDeleted,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    UserDeleted,
    UserUpserted,
)
from e911d.daemon.core.network import SwitchRef
from e911d.daemon.core.session_fold import SessionRow
from e911d.daemon.store.db import PoolConfig, connect_pool, migrate
from e911d.daemon.store.directory import apply_change
from e911d.daemon.store.directory_bulk import apply_changes
from e911d.daemon.store.sessions import SessionStore

STATE = [
    "SELECT account_id, location_id, name, address, lat, lon FROM locations ORDER BY 1, 2",
    "SELECT account_id, ip_group_id, name, location_id, addresses, bssids, switches, locating"
    " FROM ip_groups ORDER BY 1, 2",
    "SELECT account_id, ip_group_id, text(network) FROM ip_group_networks ORDER BY 1, 2, 3",
    "SELECT account_id, version > 0 FROM directory_versions ORDER BY 1",
    "SELECT account_id, user_id, e911_recommendations, e911_location_id FROM users ORDER BY 1, 2",
    "SELECT account_id, e911_recommendations FROM accounts ORDER BY 1",
]

ODD = ["é", "🚑 Notaufnahme", "'; DROP TABLE locations; --", 'q"uo\\te', "\t tab", "x" * 512]
NETS = ["203.0.113.0/24", "198.51.100.7/32", "2001:db8::/48", "10.0.0.0/8", "::1/128"]


def _address(rng: random.Random) -> Address:
    return Address(
        street=rng.choice(ODD),
        city=rng.choice(ODD),
        country="US",
        region=rng.choice(["", "Bayern"]),
        building=rng.choice([None, "B" * 100, "Ünïcode"]),
    )


def _changes(rng: random.Random, n: int) -> list[DirectoryChange]:
    out: list[DirectoryChange] = []
    for _ in range(n):
        a, key = rng.choice(["a0", "a1", "ä" * 256]), rng.choice(["k0", "k1", "k2", "🔑"])
        roll = rng.random()
        if roll < 0.4:
            coords = rng.choice([None, Coordinates(-90.0, 180.0), Coordinates(0.1, -0.3)])
            out.append(LocationUpserted(a, key, rng.choice(ODD), _address(rng), coords))
        elif roll < 0.8:
            nets = tuple(ipaddress.ip_network(x) for x in rng.sample(NETS, rng.randrange(4)))
            out.append(
                IpGroupUpserted(
                    a,
                    key,
                    rng.choice(ODD),
                    rng.choice([None, "k0", "🔑"]),
                    nets,
                    addresses=rng.choice([(), tuple(str(n) for n in nets), ("10.0.0.1-10.0.0.9",)]),
                    bssids=rng.choice([(), ("aa:bb:cc:dd:ee:ff", "00:11:22:33:44:5*")]),
                    switches=rng.choice([(), (SwitchRef("ch1", None), SwitchRef("ch2", "ge-0/1"))]),
                    locating=rng.random() < 0.5,
                )
            )
        elif roll < 0.86:
            out.append(LocationDeleted(a, key))
        elif roll < 0.9:
            out.append(IpGroupDeleted(a, key))
        elif roll < 0.95:
            # Users and accounts interleaved: runs on other tables are not cut by them.
            out.append(UserUpserted(a, key, rng.random() < 0.5, rng.choice([None, "k0"])))
        elif roll < 0.97:
            out.append(UserDeleted(a, key))
        elif roll < 0.99:
            out.append(AccountUpserted(a, rng.random() < 0.5))
        else:
            out.append(AccountDeleted(a))
    return out


async def _state(conn: asyncpg.Connection) -> list[list[tuple[object, ...]]]:
    return [[tuple(r) for r in await conn.fetch(q)] for q in STATE]


async def test_bulk_locations_and_ip_groups_equal_one_statement_per_event(database, other_database):
    one_pool = await connect_pool(PoolConfig(database, min_size=1, max_size=1))
    bulk_pool = await connect_pool(PoolConfig(other_database, min_size=1, max_size=1))
    async with one_pool.acquire() as one, bulk_pool.acquire() as bulk:
        await migrate(one)
        await migrate(bulk)
        rng = random.Random(112)
        names: set[object] = set()
        for batch_no in range(40):
            changes = _changes(rng, rng.randrange(1, 40))
            async with one.transaction():
                for change in changes:
                    await apply_change(one, change)
            async with bulk.transaction():
                await apply_changes(bulk, changes)
            state = await _state(bulk)
            assert state == await _state(one), f"batch {batch_no}"
            names |= {r[2] for r in state[0]} | {r[2] for r in state[1]}
        assert state[0] and state[1] and state[2]  # something of each kind to compare
        assert "🚑 Notaufnahme" in names and "x" * 512 in names  # the odd ones were written
        # Replaying the last batch changes nothing (idempotent, as the consumer needs).
        async with bulk.transaction():
            await apply_changes(bulk, changes)
        assert await _state(bulk) == state
    await one_pool.close()
    await bulk_pool.close()


async def test_session_rows_with_odd_fields_come_back_as_saved(database):
    pool = await connect_pool(PoolConfig(database, min_size=1, max_size=1))
    store = SessionStore()
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    rows = [
        SessionRow("s-é", "acme", "ü", "198.51.100.7", at, at, 0),
        SessionRow("🚑" * 64, "a" * 256, "u" * 256, "2001:db8::1", at, at, 11, ended_at=at),
        SessionRow(
            "s" * 256,
            "'; DROP TABLE sessions; --",
            'q"uo\\te',
            "10.0.0.1",
            at,
            at + dt.timedelta(seconds=1),
            2**31 - 1,
            alert_seq=2**31 - 1,
            bssid="aa:bb:cc:dd:ee:ff",
            switch_chassis="c" * 256,
            switch_port="ge-0/0/1 ünï",
        ),
    ]
    async with pool.acquire() as conn:
        async with conn.transaction():
            await store.save(conn, rows)
        async with conn.transaction():
            back = await store.lock(conn, [r.session_id for r in rows])
        assert back == {r.session_id: r for r in rows}
        # An upsert of the same ids replaces every field, NULLs included.
        changed = [
            SessionRow(r.session_id, r.account_id, r.user_id, "192.0.2.1", at, at, 1) for r in rows
        ]
        async with conn.transaction():
            await store.save(conn, changed)
            back = await store.lock(conn, [r.session_id for r in rows])
        assert back == {r.session_id: r for r in changed}
    await pool.close()
