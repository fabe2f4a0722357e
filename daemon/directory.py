"""The directory: projecting directory events into tables, and the per-account cache.

Checks read an in-memory :class:`AccountDirectory` per account. Triggers bump
``directory_versions`` on every change to locations and IP groups, whoever writes
them (this projector, an import, another system's SQL), and each check batch reads
those versions with its sessions: a stale snapshot is reloaded before it is used, on
every instance. The same triggers NOTIFY (see :mod:`daemon.notify`), which drops the
snapshot and re-evaluates the account's sessions at once.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace

import asyncpg
import msgspec
import structlog

from e911d.consumers.events import (
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
from e911d.consumers.ip import IPNetwork
from e911d.consumers.network import SwitchRef
from e911d.daemon.db import load_queries
from e911d.daemon.evaluation import AccountDirectory
from e911d.daemon.model import IpGroup, Location

log = structlog.get_logger("e911d.directory")
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
                msgspec.to_builtins(change.address),
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
            for snap in await load_accounts(conn, stale, versions):
                out[snap.account_id] = snap
                self._snapshots[snap.account_id] = snap
                self._snapshots.move_to_end(snap.account_id)
            while len(self._snapshots) > self._max:
                self._snapshots.popitem(last=False)
        return out


async def load_accounts(
    conn: asyncpg.Connection, account_ids: Sequence[str], versions: dict[str, int]
) -> list[AccountDirectory]:
    locations: dict[str, list[Location]] = {a: [] for a in account_ids}
    for r in await conn.fetch(SQL["locations_of"], list(account_ids)):
        locations[r["account_id"]].append(Location(r["location_id"], r["name"]))
    groups: dict[str, dict[str, IpGroup]] = {a: {} for a in account_ids}
    networks: dict[tuple[str, str], list[IPNetwork]] = {}
    for r in await conn.fetch(SQL["ip_groups_of"], list(account_ids)):
        key = (r["account_id"], r["ip_group_id"])
        if key not in networks:
            networks[key] = []
            groups[r["account_id"]][r["ip_group_id"]] = IpGroup(
                r["ip_group_id"],
                r["name"],
                r["location_id"],
                (),
                tuple(r["bssids"]),
                tuple(SwitchRef(s["chassis_id"], s.get("port_id")) for s in r["switches"]),
                r["locating"],
            )
        if r["network"] is not None:
            networks[key].append(ipaddress.ip_network(r["network"]))
    return [
        AccountDirectory(
            a,
            locations[a],
            [replace(g, networks=tuple(networks[a, gid])) for gid, g in groups[a].items()],
            version=versions.get(a, 0),
        )
        for a in account_ids
    ]
