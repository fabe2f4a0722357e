"""The read ``e911d report networks`` needs, in one read-only snapshot
(``daemon/store/sql/unconfigured.sql``), turned into :class:`NetworkReport` rows.

The clock is a parameter so a test can script days; the command passes the real one.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import asyncpg

from e911d.daemon.commands.networks.agreement import (
    Confirmation,
    NetworkReport,
    NetworkRow,
    NetworksReport,
    build_network,
    busiest_first,
    group_confirmations,
)
from e911d.daemon.core.evaluation import AccountDirectory
from e911d.daemon.core.network_key import NetworkKey, NetworkKeyKind
from e911d.daemon.store.db import load_queries, require_tables
from e911d.daemon.store.directory import load_accounts

SQL: Final = load_queries("unconfigured.sql")
TABLES: Final = (
    "accounts",
    "locations",
    "confirmed_networks",
    "unconfigured_networks",
    "unconfigured_network_sightings",
)


@dataclass(frozen=True, slots=True)
class Query:
    accounts: tuple[str, ...]  # empty: every account
    since: dt.timedelta
    min_users: int
    agreement: float
    retention: dt.timedelta


async def require_schema(conn: asyncpg.Connection) -> None:
    await require_tables(conn, TABLES, "record of networks nobody configured")


def located_by(directory: AccountDirectory, key: NetworkKey) -> bool:
    """Whether a group of the account (locating or not) now matches the network: one
    configured since it was recorded is no longer anybody's to configure."""
    if key.kind is NetworkKeyKind.BSSID:
        return directory.match_bssid(key.value) is not None
    if key.kind is NetworkKeyKind.SWITCH_PORT:
        chassis, port = key.chassis_port
        return (directory.match_port(chassis, port) or directory.match_switch(chassis)) is not None
    net = ipaddress.ip_network(key.value)
    return any(directory.match(ip) is not None for ip in (net.network_address, net[-1]))


def _row(r: asyncpg.Record) -> NetworkRow:
    return NetworkRow(
        account_id=r["account_id"],
        key=NetworkKey(NetworkKeyKind(r["key_kind"]), r["network_key"]),
        users=r["users"],
        sessions=r["sessions"],
        days=r["days"],
        first_day=r["first_day"],
        last_day=r["last_day"],
    )


async def _confirmations(
    conn: asyncpg.Connection, rows: Sequence[NetworkRow]
) -> dict[tuple[str, NetworkKey], list[Confirmation]]:
    found = await conn.fetch(
        SQL["confirmations"],
        [r.account_id for r in rows],
        [str(r.key.kind) for r in rows],
        [r.key.value for r in rows],
    )
    return dict(
        group_confirmations(
            (
                c["account_id"],
                NetworkKey(NetworkKeyKind(c["key_kind"]), c["network_key"]),
                Confirmation(c["location_id"], c["name"], c["users"]),
            )
            for c in found
        )
    )


async def read_networks(conn: asyncpg.Connection, query: Query, now: dt.datetime) -> NetworksReport:
    """Every network recorded in the UTC days from ``now - since`` to ``now``."""
    last_day = now.astimezone(dt.UTC).date()
    first_day = (now - query.since).astimezone(dt.UTC).date()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = [
            _row(r)
            for r in await conn.fetch(
                SQL["networks"],
                list(query.accounts) or None,
                first_day,
                last_day,
                query.min_users,
            )
        ]
        confirmed = await _confirmations(conn, rows)
        accounts = sorted({r.account_id for r in rows})
        loaded = await load_accounts(conn, accounts, dict.fromkeys(accounts, 0))
    directories = {a.directory.account_id: a.directory for a in loaded}
    networks: list[NetworkReport] = []
    for row in rows:
        report = build_network(row, confirmed.get((row.account_id, row.key), ()))
        directory = directories.get(row.account_id)
        if directory is not None and located_by(directory, row.key):
            report = replace(report, configured_now=True)
        networks.append(report)
    return NetworksReport(
        generated_at=now,
        first_day=first_day,
        last_day=last_day,
        min_users=query.min_users,
        agreement=query.agreement,
        networks=tuple(busiest_first(networks)),
        beyond_retention=query.since > query.retention,
    )


async def account_toggles(conn: asyncpg.Connection, accounts: Sequence[str]) -> dict[str, bool]:
    """Each account's own toggle, which a directory file's account entry must repeat."""
    rows = await conn.fetch(SQL["account_toggles"], list(accounts))
    return {r["account_id"]: r["e911_recommendations"] for r in rows}
