"""What the database holds of the directory: its rows, and the same entities in the
forms that an import compares the file's entities in."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from e911d.daemon.core.address import address_doc
from e911d.daemon.core.events import IpGroupUpserted, LocationUpserted, UserUpserted
from e911d.daemon.core.ip import IPNetwork
from e911d.daemon.store.db import load_queries
from e911d.daemon.store.directory import switches_doc

SQL = load_queries("directory_file.sql")

Row = dict[str, Any]
Key = tuple[str, str]
Form = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Rows:
    """The directory rows of some accounts (or of all), as the database holds them."""

    accounts: tuple[Row, ...]
    locations: tuple[Row, ...]
    ip_groups: tuple[Row, ...]
    networks: tuple[Row, ...]
    users: tuple[Row, ...]

    def group_networks(self) -> dict[Key, frozenset[IPNetwork]]:
        out: dict[Key, set[IPNetwork]] = {}
        for r in self.networks:
            key = (r["account_id"], r["ip_group_id"])
            out.setdefault(key, set()).add(ipaddress.ip_network(r["network"]))
        return {key: frozenset(nets) for key, nets in out.items()}

    def group_addresses(self) -> dict[Key, tuple[str, ...]]:
        """Each group's addresses as given, or, for a group whose writer filled in only
        its networks (another system's SQL), those networks: the projector's own
        fallback, so that an export of such a group keeps its networks."""
        networks = self.group_networks()
        out: dict[Key, tuple[str, ...]] = {}
        for r in self.ip_groups:
            key = (r["account_id"], r["ip_group_id"])
            fallback = sorted(networks.get(key, ()), key=lambda n: (n.version, n))
            out[key] = tuple(r["addresses"]) or tuple(str(n) for n in fallback)
        return out


async def read_rows(conn: asyncpg.Connection, accounts: Sequence[str] | None) -> Rows:
    """``accounts=None`` reads every account."""
    ids = None if accounts is None else list(accounts)

    async def fetch(name: str) -> tuple[Row, ...]:
        return tuple(dict(r) for r in await conn.fetch(SQL[name], ids))

    return Rows(
        await fetch("accounts"),
        await fetch("locations"),
        await fetch("ip_groups"),
        await fetch("ip_group_networks"),
        await fetch("users"),
    )


def location_form(change: LocationUpserted) -> Form:
    coords = change.coordinates
    return (
        change.name,
        address_doc(change.address),
        None if coords is None else coords.lat,
        None if coords is None else coords.lon,
    )


def ip_group_form(change: IpGroupUpserted) -> Form:
    """As the projector stores it, so that a change of bssids, switches or locating
    alone is an update (and the same ones in another spelling are not)."""
    return (
        change.name,
        change.location_id,
        change.addresses,
        frozenset(change.networks),
        change.bssids,
        switches_doc(change.switches),
        change.locating,
    )


def user_form(change: UserUpserted) -> Form:
    return (change.e911_recommendations, change.e911_location_id)


@dataclass(frozen=True, slots=True)
class Stored:
    """The database's directory in the forms the file's entities are compared in:
    what the projector would write for an entity equals what it finds there."""

    accounts: Mapping[str, bool]
    locations: Mapping[Key, Form]
    ip_groups: Mapping[Key, Form]
    users: Mapping[Key, Form]

    @classmethod
    def of(cls, rows: Rows) -> Stored:
        networks = rows.group_networks()
        addresses = rows.group_addresses()
        return cls(
            accounts={r["account_id"]: r["e911_recommendations"] for r in rows.accounts},
            locations={
                (r["account_id"], r["location_id"]): (r["name"], r["address"], r["lat"], r["lon"])
                for r in rows.locations
            },
            ip_groups={
                (k := (r["account_id"], r["ip_group_id"])): (
                    r["name"],
                    r["location_id"],
                    addresses[k],
                    networks.get(k, frozenset()),
                    tuple(r["bssids"] or ()),
                    r["switches"],
                    r["locating"],
                )
                for r in rows.ip_groups
            },
            users={
                (r["account_id"], r["user_id"]): (r["e911_recommendations"], r["e911_location_id"])
                for r in rows.users
            },
        )

    def location_ids(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for account_id, location_id in self.locations:
            out.setdefault(account_id, set()).add(location_id)
        return out
