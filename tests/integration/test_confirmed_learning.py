"""Learning networks users confirmed, on a real PostgreSQL
(docs/spec.md#networks-a-user-confirmed): which in-app changes teach, under which key,
the cap per user, expiry, the deletes that forget, and the versions that keep the
checks' memory honest.

``learn`` runs here on the same transaction shape as ingest (after the batch's
directory changes and sessions); the test writes the directory with the projector and
the sessions as rows.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import AsyncIterator

import asyncpg
import pytest

from e911d.daemon.core.confirmed_network import Confirmation, KeyPrefixes
from e911d.daemon.core.events import (
    AccountDeleted,
    AccountUpserted,
    Address,
    DirectoryChange,
    DirectoryEvent,
    DirectoryEventKind,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    UserDeleted,
    UserLocationChanged,
    UserUpserted,
)
from e911d.daemon.core.ip import parse_address_item
from e911d.daemon.core.network_key import bssid_key, ip_prefix_key, switch_port_key
from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.check_batches import CheckConfig, CheckRunner
from e911d.daemon.store.confirmed_networks import LearningConfig, expire, learn
from e911d.daemon.store.db import PoolConfig, open_pool
from e911d.daemon.store.directory import DirectoryCache
from e911d.daemon.store.directory_bulk import apply_changes
from tests.support import now

HOME_IP = "198.51.100.23"  # no group of the account covers it
HOME_PREFIX = ip_prefix_key(ipaddress.ip_address(HOME_IP)).value
HQ_IP = "203.0.113.5"
VPN_IP = "192.0.2.9"
AP = "f06e0bc20321"
ADDRESS = Address("1 Main St", "Springfield", "US")
CONFIG = LearningConfig(per_user=3, ttl=dt.timedelta(days=90), prefixes=KeyPrefixes())


def _group(gid: str, location: str | None, cidr: str, locating: bool = True) -> IpGroupUpserted:
    nets = tuple(parse_address_item(cidr))
    return IpGroupUpserted("acme", gid, gid, location, nets, (cidr,), locating=locating)


DIRECTORY: list[DirectoryChange] = [
    AccountUpserted("acme", True),
    AccountUpserted("other", True),
    LocationUpserted("acme", "hq", "Headquarters", ADDRESS, None),
    LocationUpserted("acme", "home", "Home office", ADDRESS, None),
    LocationUpserted("acme", "cabin", "Cabin", ADDRESS, None),
    LocationUpserted("other", "home", "Their home", ADDRESS, None),
    _group("hq-net", "hq", "203.0.113.0/24"),
    _group("vpn", None, "192.0.2.0/24", locating=False),
    UserUpserted("acme", "alice", True, "hq"),
    UserUpserted("acme", "bob", True, "hq"),
    UserUpserted("other", "alice", True, None),
]


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    async with open_pool(PoolConfig(database, 1, 2)) as pool, pool.acquire() as c:
        await apply_changes(c, DIRECTORY)
        yield c


async def _session(
    conn: asyncpg.Connection,
    sid: str,
    user: str = "alice",
    ip: str = HOME_IP,
    *,
    account: str = "acme",
    bssid: str | None = None,
    port: tuple[str, str] | None = None,
    ended: bool = False,
) -> None:
    t = now()
    await conn.execute(
        "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at, "
        "last_event_at, kafka_partition, bssid, switch_chassis, switch_port, ended_at) "
        "VALUES ($1, $2, $3, $4::inet, $5, $5, 0, $6, $7, $8, $9)",
        sid,
        account,
        user,
        ip,
        t,
        bssid,
        port[0] if port else None,
        port[1] if port else None,
        t if ended else None,
    )


def _changed(
    location: str | None = "home",
    session: str | None = None,
    user: str = "alice",
    via: str = "app",
    at: dt.datetime | None = None,
    account: str = "acme",
) -> DirectoryEvent:
    change = UserLocationChanged(account, user, location, via, session)
    return DirectoryEvent(DirectoryEventKind.USER_LOCATION_CHANGED, "e", at, change)


async def _learn(
    conn: asyncpg.Connection, *events: DirectoryEvent, config: LearningConfig = CONFIG
) -> int:
    """As ingest does: the batch's directory changes, then learning, one transaction."""
    async with conn.transaction():
        await apply_changes(conn, [e.change for e in events])
        return len((await learn(conn, events, now(), config)).learned)


async def _entries(conn: asyncpg.Connection) -> list[tuple[str, str, str, str, str]]:
    rows = await conn.fetch(
        "SELECT account_id, user_id, key_kind, network_key, location_id FROM confirmed_networks "
        "ORDER BY 1, 2, 3, 4"
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_the_named_session_teaches_its_most_specific_key(conn) -> None:
    await _session(conn, "s-wifi", bssid=AP, port=("core-sw-1", "gi1/0/7"))
    await _session(conn, "s-port", port=("core-sw-1", "gi1/0/7"))
    await _session(conn, "s-ip")
    assert await _learn(conn, _changed("home", "s-wifi")) == 1
    assert await _learn(conn, _changed("home", "s-port")) == 1
    assert await _learn(conn, _changed("cabin", "s-ip")) == 1
    port = switch_port_key("core-sw-1", "gi1/0/7")
    assert await _entries(conn) == sorted(
        [
            ("acme", "alice", "bssid", bssid_key(AP).value, "home"),
            ("acme", "alice", "switch_port", port.value, "home"),
            (
                "acme",
                "alice",
                "ip_prefix",
                ip_prefix_key(ipaddress.ip_address(HOME_IP)).value,
                "cabin",
            ),
        ]
    )
    # The location the user now has is the one they chose.
    assigned = "SELECT e911_location_id FROM users WHERE account_id='acme' AND user_id='alice'"
    assert await conn.fetchval(assigned) == "cabin"


async def test_without_session_id_only_a_user_with_one_live_session_teaches(conn) -> None:
    await _session(conn, "s-laptop")
    await _session(conn, "s-old", ip="198.51.200.1", ended=True)  # ended: not live
    assert await _learn(conn, _changed("home")) == 1
    assert len(await _entries(conn)) == 1
    # A second live session (a phone on a carrier network): nothing is learned.
    await _session(conn, "s-phone", ip="100.64.3.3")
    await conn.execute("DELETE FROM confirmed_networks")
    assert await _learn(conn, _changed("cabin")) == 0
    assert await _entries(conn) == []
    # With the session named, the same change teaches.
    assert await _learn(conn, _changed("cabin", "s-laptop")) == 1


async def test_each_change_in_the_app_is_counted_by_what_became_of_it(conn) -> None:
    await _session(conn, "s1")
    await _session(conn, "s-hq", ip=HQ_IP)
    events = [
        _changed("home", "s1"),
        _changed("home", "s-hq"),
        _changed("home", "s-nowhere"),
        _changed("nowhere", "s1"),
        _changed("home", "s1", via="console"),  # not a confirmation: not counted
    ]
    async with conn.transaction():
        await apply_changes(conn, [e.change for e in events])
        results = (await learn(conn, events, now(), CONFIG)).results
    assert dict(results) == {
        Confirmation.LEARNED: 1,
        Confirmation.NETWORK_LOCATED: 1,
        Confirmation.SESSION_UNKNOWN: 1,
        Confirmation.LOCATION_UNKNOWN: 1,
    }
    await _session(conn, "s2", ip="100.64.0.1")
    async with conn.transaction():
        results = (await learn(conn, [_changed("home")], now(), CONFIG)).results
    assert dict(results) == {Confirmation.SESSIONS_SEVERAL: 1}


async def test_a_session_that_is_not_the_users_own_live_one_teaches_nothing(conn) -> None:
    await _session(conn, "s-bob", user="bob")
    await _session(conn, "s-theirs", account="other")
    await _session(conn, "s-ended", ended=True)
    await _session(conn, "s-stale")
    await conn.execute(
        "UPDATE sessions SET last_event_at = now() - interval '13 hours' WHERE session_id='s-stale'"
    )
    for sid in ("s-bob", "s-theirs", "s-ended", "s-stale", "s-nowhere"):
        assert await _learn(conn, _changed("home", sid)) == 0, sid
    assert await _entries(conn) == []


async def test_a_network_a_group_decides_teaches_nothing(conn) -> None:
    await _session(conn, "s-hq", ip=HQ_IP)
    await _session(conn, "s-vpn", ip=VPN_IP)
    assert await _learn(conn, _changed("home", "s-hq")) == 0  # locating: mapped already
    assert await _learn(conn, _changed("home", "s-vpn")) == 0  # non-locating: tells nothing
    assert await _entries(conn) == []


async def test_only_an_app_change_to_an_existing_location_teaches(conn) -> None:
    await _session(conn, "s1")
    assert await _learn(conn, _changed("home", "s1", via="console")) == 0
    assert await _learn(conn, _changed(None, "s1")) == 0
    assert await _learn(conn, _changed("nowhere", "s1")) == 0
    # The user deleted later in the same batch: nothing is left behind.
    deleted = DirectoryEvent(
        DirectoryEventKind.USER_DELETED, "d", None, UserDeleted("acme", "alice")
    )
    assert await _learn(conn, _changed("home", "s1"), deleted) == 0
    assert await _entries(conn) == []


async def test_a_user_keeps_at_most_the_newest_entries(conn) -> None:
    t0 = now() - dt.timedelta(hours=10)
    for i in range(5):
        await _session(conn, f"s{i}", ip=f"198.51.{i}.10")
        at = t0 + dt.timedelta(hours=i)
        assert await _learn(conn, _changed("home", f"s{i}", at=at)) == 1
    kept = {r[3] for r in await _entries(conn)}
    assert kept == {"198.51.2.0/24", "198.51.3.0/24", "198.51.4.0/24"}
    # Bob's entries do not count against Alice's cap, nor hers against his.
    await _session(conn, "s-bob", user="bob", ip="198.51.9.1")
    assert await _learn(conn, _changed("home", "s-bob", user="bob")) == 1
    assert len(await _entries(conn)) == 4


async def test_entries_expire_after_the_ttl(conn) -> None:
    await _session(conn, "s1")
    await _session(conn, "s2", ip="198.51.7.7")
    long_ago = now() - dt.timedelta(days=91)
    # A confirmation older than the TTL (a replay) is not learned at all.
    assert await _learn(conn, _changed("home", "s1", at=long_ago)) == 0
    assert await _learn(conn, _changed("home", "s1")) == 1
    assert await _learn(conn, _changed("home", "s2", at=now() - dt.timedelta(days=80))) == 1
    assert await expire(conn, now() - dt.timedelta(days=90)) == 0
    assert await expire(conn, now() - dt.timedelta(days=70), limit=1) == 1
    assert [r[3] for r in await _entries(conn)] == ["198.51.100.0/24"]


async def test_a_replayed_confirmation_changes_nothing(conn) -> None:
    await _session(conn, "s1")
    at = now() - dt.timedelta(minutes=5)
    assert await _learn(conn, _changed("home", "s1", at=at)) == 1
    before = await conn.fetch("SELECT * FROM confirmed_networks")
    version = await conn.fetchval("SELECT version FROM user_versions WHERE account_id='acme'")
    assert await _learn(conn, _changed("home", "s1", at=at)) == 1
    assert await conn.fetch("SELECT * FROM confirmed_networks") == before
    # An older confirmation of another location does not overwrite a newer one.
    older = at - dt.timedelta(minutes=1)
    await _learn(conn, _changed("cabin", "s1", at=older))
    rows = await conn.fetch("SELECT location_id FROM confirmed_networks")
    assert [r["location_id"] for r in rows] == ["home"]
    assert version is not None


async def test_deleting_the_user_the_location_or_the_account_forgets_entries(conn) -> None:
    await _session(conn, "s1")
    await _session(conn, "s2", ip="198.51.7.7")
    await _session(conn, "s-bob", user="bob")
    await _learn(conn, _changed("home", "s1"))
    await _learn(conn, _changed("cabin", "s2"))
    await _learn(conn, _changed("home", "s-bob", user="bob"))
    assert len(await _entries(conn)) == 3
    await apply_changes(conn, [LocationDeleted("acme", "cabin")])
    assert {(r[1], r[4]) for r in await _entries(conn)} == {("alice", "home"), ("bob", "home")}
    await apply_changes(conn, [UserDeleted("acme", "alice")])
    assert {r[1] for r in await _entries(conn)} == {"bob"}
    # Another system's SQL deletes the account's rows directly: the entries go too.
    await conn.execute("DELETE FROM accounts WHERE account_id = 'acme'")
    assert await _entries(conn) == []
    await apply_changes(conn, [AccountDeleted("acme")])


async def test_bulk_user_deletes_forget_every_deleted_users_entries(conn) -> None:
    await _session(conn, "s1")
    await _session(conn, "s-bob", user="bob")
    await _learn(conn, _changed("home", "s1"), _changed("home", "s-bob", user="bob"))
    assert len(await _entries(conn)) == 2
    await apply_changes(conn, [UserDeleted("acme", "alice"), UserDeleted("acme", "bob")])
    assert await _entries(conn) == []


async def test_every_change_to_entries_bumps_the_accounts_user_version(conn) -> None:
    async def version() -> int:
        v = await conn.fetchval("SELECT version FROM user_versions WHERE account_id='acme'")
        assert isinstance(v, int)
        return v

    await _session(conn, "s1")
    v0 = await version()
    await _learn(conn, _changed("home", "s1", via="console"))  # the user row changes
    v1 = await version()
    assert v1 > v0
    async with conn.transaction():  # an entry alone, with no change to users
        await learn(conn, [_changed("home", "s1")], now(), CONFIG)
    v2 = await version()
    assert v2 > v1
    await conn.execute("UPDATE confirmed_networks SET last_confirmed_at = now()")
    v3 = await version()
    assert v3 > v2
    assert await expire(conn, now() + dt.timedelta(seconds=1)) == 1
    assert await version() > v3


async def test_checks_read_the_users_own_entries(conn) -> None:
    """The check of Alice on her confirmed network recommends it; Bob on the same network
    gets every location; an expired entry is not used."""
    await _session(conn, "s-alice")
    await _session(conn, "s-bob", user="bob")
    await _learn(conn, _changed("home", "s-alice"))
    await apply_changes(conn, [UserLocationChanged("acme", "alice", "hq", "console")])
    runner = CheckRunner(
        AlertStore("alerts", "urn:test"),
        DirectoryCache(),
        CheckConfig(dt.timedelta(hours=1), learning=CONFIG),
    )
    async with conn.transaction():
        report = await runner.run(conn, ["s-alice", "s-bob"], now())
    by_session = {a.session.session_id: a.recommendation for a in report.raised}
    assert by_session["s-alice"].kind == "user_confirmed"
    assert [loc.location_id for loc in by_session["s-alice"].locations] == ["home"]
    assert by_session["s-bob"].kind == "all_locations"
    # Once the entry has expired, Alice is offered every location too.
    expired = LearningConfig(per_user=3, ttl=dt.timedelta(seconds=0))
    stale = CheckRunner(
        AlertStore("alerts", "urn:test"),
        DirectoryCache(),
        CheckConfig(dt.timedelta(hours=1), learning=expired),
    )
    async with conn.transaction():
        later = await stale.run(conn, ["s-alice"], now() + dt.timedelta(seconds=1))
    assert [r.reason for r in later.resolved] == ["superseded"]
    assert [a.recommendation.kind for a in later.raised] == ["all_locations"]
