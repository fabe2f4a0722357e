"""The directory: projecting directory events into tables, and the per-account cache.

Checks read an in-memory :class:`AccountDirectory` per account. Triggers bump
``directory_versions`` on every change to locations and IP groups, whoever writes
them (this projector, an import, another system's SQL), and each check batch reads
those versions with its sessions: a stale snapshot is reloaded before it is used, on
every instance. The same triggers NOTIFY (see :mod:`daemon.store.notify`), which drops the
snapshot and re-evaluates the account's sessions at once.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from e911d.daemon.core.address import address_doc, address_line
from e911d.daemon.core.evaluation import AccountDirectory
from e911d.daemon.core.events import (
    AccountDeleted,
    AccountUpserted,
    DirectoryChange,
    IpGroupDeleted,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    UserDeleted,
    UserLocationChanged,
    UserUpserted,
)
from e911d.daemon.core.ip import IPNetwork
from e911d.daemon.core.model import IpGroup, Location
from e911d.daemon.core.network import (
    BadMac,
    SwitchRef,
    normalize_bssid_pattern,
    normalize_chassis_id,
    normalize_port_id,
)
from e911d.daemon.store.db import load_queries

log = structlog.get_logger(__name__)
SQL = load_queries("directory.sql")


async def apply_change(conn: asyncpg.Connection, change: DirectoryChange) -> None:
    """Upserts replace the whole entity; deletes of unknown entities are no-ops."""
    match change:
        case AccountUpserted():
            await conn.execute(
                SQL["upsert_account"], change.account_id, change.e911_recommendations
            )
        case AccountDeleted():
            for stmt in (
                "delete_account_users",
                "delete_account_ip_groups",
                "delete_account_locations",
                "delete_account",
            ):
                await conn.execute(SQL[stmt], change.account_id)
        case UserUpserted():
            await conn.execute(
                SQL["upsert_user"],
                change.account_id,
                change.user_id,
                change.e911_recommendations,
                change.e911_location_id,
            )
        case UserLocationChanged():
            await conn.execute(
                SQL["set_user_location"], change.account_id, change.user_id, change.e911_location_id
            )
        case UserDeleted():
            await conn.execute(SQL["delete_user"], change.account_id, change.user_id)
        case LocationUpserted():
            coords = change.coordinates
            await conn.execute(
                SQL["upsert_location"],
                change.account_id,
                change.location_id,
                change.name,
                address_doc(change.address),
                None if coords is None else coords.lat,
                None if coords is None else coords.lon,
            )
        case LocationDeleted():
            await conn.execute(SQL["delete_location"], change.account_id, change.location_id)
        case IpGroupUpserted():
            await conn.execute(
                SQL["upsert_ip_group"],
                change.account_id,
                change.ip_group_id,
                change.name,
                change.location_id,
                list(change.addresses) or [str(n) for n in change.networks],
                list(change.bssids),
                switches_doc(change.switches),
                change.locating,
            )
            await conn.execute(
                SQL["delete_ip_group_networks"], change.account_id, change.ip_group_id
            )
            await conn.executemany(
                SQL["insert_ip_group_network"],
                [(change.account_id, change.ip_group_id, str(n)) for n in change.networks],
            )
        case IpGroupDeleted():
            await conn.execute(SQL["delete_ip_group"], change.account_id, change.ip_group_id)


class DirectoryCache:
    """Bounded LRU of account snapshots, each tagged with the version it was built at."""

    def __init__(self, max_accounts: int = 100_000) -> None:
        self._max = max_accounts
        self._snapshots: OrderedDict[str, AccountDirectory] = OrderedDict()

    def __len__(self) -> int:
        return len(self._snapshots)

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._snapshots

    def invalidate(self, account_ids: Iterable[str]) -> None:
        """Forget snapshots a notice says are stale (the version check stays a backstop)."""
        for account_id in account_ids:
            self._snapshots.pop(account_id, None)

    def clear(self) -> None:
        self._snapshots.clear()

    async def get_many(
        self, conn: asyncpg.Connection, versions: dict[str, int]
    ) -> dict[str, AccountDirectory]:
        """Snapshots at (at least) the given versions, loading the stale ones in one go."""
        out: dict[str, AccountDirectory] = {}
        stale: list[str] = []
        for account_id, version in versions.items():
            snap = self._snapshots.get(account_id)
            if snap is not None and snap.version >= version:
                self._snapshots.move_to_end(account_id)
                out[account_id] = snap
            else:
                stale.append(account_id)
        if stale:
            for loaded in await load_accounts(conn, stale, versions):
                snap = loaded.directory
                out[snap.account_id] = snap
                self._snapshots[snap.account_id] = snap
                self._snapshots.move_to_end(snap.account_id)
            while len(self._snapshots) > self._max:
                self._snapshots.popitem(last=False)
        return out


def switches_doc(switches: Iterable[SwitchRef]) -> list[dict[str, str]]:
    """The jsonb form of a group's switches: ``port_id`` only when one port is meant."""
    return [
        {"chassis_id": s.chassis_id}
        if s.port_id is None
        else {"chassis_id": s.chassis_id, "port_id": s.port_id}
        for s in switches
    ]


def bssids_of(stored: Iterable[str] | None) -> tuple[str, ...]:
    """The stored BSSIDs, normalised again: the projector stores them normalised, but
    another system's SQL may not, and an unnormalised one would never match. One that
    is no BSSID at all is skipped (it could never match either)."""
    out: list[str] = []
    for text in stored or ():
        try:
            out.append(normalize_bssid_pattern(text))
        except BadMac:
            continue
    return tuple(dict.fromkeys(out))


def switches_of(doc: object) -> tuple[SwitchRef, ...]:
    """The stored switches back as values, normalised again (see :func:`bssids_of`);
    a malformed entry is skipped."""
    if not isinstance(doc, list):
        return ()
    out: list[SwitchRef] = []
    for item in doc:
        chassis = item.get("chassis_id") if isinstance(item, dict) else None
        port = item.get("port_id") if isinstance(item, dict) else None
        if isinstance(chassis, str) and (port is None or isinstance(port, str)):
            port = None if port is None else normalize_port_id(port)
            out.append(SwitchRef(normalize_chassis_id(chassis), port))
    return tuple(dict.fromkeys(out))


def location_of(r: asyncpg.Record) -> Location:
    """A ``locations`` row as the checks see it (coordinates only when both are set),
    with its address on one line for the alerts that name it."""
    lat, lon = r["lat"], r["lon"]
    coordinates = None if lat is None or lon is None else (float(lat), float(lon))
    return Location(r["location_id"], r["name"], coordinates, address_line(r["address"]))


@dataclass(frozen=True, slots=True)
class LoadedAccount:
    """A snapshot and every IP group it was built from, those the rules ignore included.

    The snapshot keeps only its compiled lookups, since the cache holds up to 100,000 of
    them; ``explain`` lists every group containing an IP from these same values, so
    what it shows and what the checks match can only differ by the rules themselves.
    """

    directory: AccountDirectory
    ip_groups: tuple[IpGroup, ...]


async def load_accounts(
    conn: asyncpg.Connection, account_ids: Sequence[str], versions: dict[str, int]
) -> list[LoadedAccount]:
    locations: dict[str, list[Location]] = {a: [] for a in account_ids}
    for r in await conn.fetch(SQL["locations_of"], list(account_ids)):
        locations[r["account_id"]].append(location_of(r))
    groups: dict[str, dict[str, tuple[asyncpg.Record, list[IPNetwork]]]] = {
        a: {} for a in account_ids
    }
    for r in await conn.fetch(SQL["ip_groups_of"], list(account_ids)):
        entry = groups[r["account_id"]].setdefault(r["ip_group_id"], (r, []))
        if r["network"] is not None:
            entry[1].append(ipaddress.ip_network(r["network"]))
    out: list[LoadedAccount] = []
    for a in account_ids:
        ip_groups = tuple(
            IpGroup(
                gid,
                r["name"],
                r["location_id"],
                tuple(nets),
                bssids=bssids_of(r["bssids"]),
                switches=switches_of(r["switches"]),
                locating=r["locating"],
            )
            for gid, (r, nets) in groups[a].items()
        )
        directory = AccountDirectory(a, locations[a], ip_groups, version=versions.get(a, 0))
        out.append(LoadedAccount(directory, ip_groups))
    return out
