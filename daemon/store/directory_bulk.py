"""Directory events written in bulk: a run of same-kind events on a table is one statement.

A directory import is mostly user events (250,000 users for 100 accounts), and one
statement per event made the directory topic the slowest thing to ingest. Events are
applied in order; consecutive events of one bulk kind (account upserts, user upserts,
user location changes, user deletes) collapse into one set-based statement, keeping
the last event per key, which is what applying them one by one leaves behind (each
replaces the whole row or deletes it). Location and IP group upserts go in bulk too
(an IP group's networks as one delete and one insert for the whole run); the rest,
rare and structural (deletes of locations, IP groups, accounts), goes through
:func:`apply_change` one event at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from e911d.daemon.core.address import address_doc
from e911d.daemon.core.events import (
    AccountUpserted,
    DirectoryChange,
    IpGroupUpserted,
    LocationUpserted,
    UserDeleted,
    UserLocationChanged,
    UserUpserted,
)
from e911d.daemon.store.db import json_text, load_queries
from e911d.daemon.store.directory import apply_change, switches_doc

SQL = load_queries("directory_bulk.sql")

_Key = tuple[str, ...]


def _key(change: Any) -> _Key:
    match change:
        case AccountUpserted():
            return (change.account_id,)
        case LocationUpserted():
            return (change.account_id, change.location_id)
        case IpGroupUpserted():
            return (change.account_id, change.ip_group_id)
    return (change.account_id, change.user_id)


_COLUMNS: dict[type, tuple[str, tuple[str, ...]]] = {
    AccountUpserted: (SQL["upsert_accounts"], ("account_id", "e911_recommendations")),
    UserUpserted: (
        SQL["upsert_users"],
        ("account_id", "user_id", "e911_recommendations", "e911_location_id"),
    ),
    UserLocationChanged: (SQL["set_users_location"], ("account_id", "user_id", "e911_location_id")),
    UserDeleted: (SQL["delete_users"], ("account_id", "user_id")),
}


async def _upsert_locations(conn: asyncpg.Connection, rows: list[LocationUpserted]) -> None:
    await conn.execute(
        SQL["upsert_locations"],
        [r.account_id for r in rows],
        [r.location_id for r in rows],
        [r.name for r in rows],
        [json_text(address_doc(r.address)) for r in rows],
        [None if r.coordinates is None else r.coordinates.lat for r in rows],
        [None if r.coordinates is None else r.coordinates.lon for r in rows],
    )


async def _upsert_ip_groups(conn: asyncpg.Connection, rows: list[IpGroupUpserted]) -> None:
    """As :func:`apply_change` writes one: the addresses as given (or, with none given,
    the networks), then the group's networks replaced."""
    accounts = [r.account_id for r in rows]
    groups = [r.ip_group_id for r in rows]
    await conn.execute(
        SQL["upsert_ip_groups"],
        accounts,
        groups,
        [r.name for r in rows],
        [r.location_id for r in rows],
        [json_text(list(r.addresses) or [str(n) for n in r.networks]) for r in rows],
        [json_text(list(r.bssids)) for r in rows],
        [json_text(switches_doc(r.switches)) for r in rows],
        [r.locating for r in rows],
    )
    await conn.execute(SQL["delete_ip_groups_networks"], accounts, groups)
    nets = [(r.account_id, r.ip_group_id, str(n)) for r in rows for n in r.networks]
    if nets:
        await conn.execute(
            SQL["insert_ip_groups_networks"],
            [a for a, _, _ in nets],
            [g for _, g, _ in nets],
            [n for _, _, n in nets],
        )


async def _flush(conn: asyncpg.Connection, kind: type, run: dict[_Key, Any]) -> None:
    rows = [run[k] for k in sorted(run)]
    if len(rows) == 1:
        await apply_change(conn, rows[0])
    elif kind is LocationUpserted:
        await _upsert_locations(conn, rows)
    elif kind is IpGroupUpserted:
        await _upsert_ip_groups(conn, rows)
    else:
        statement, fields = _COLUMNS[kind]
        await conn.execute(statement, *([getattr(r, f) for r in rows] for f in fields))


# The table each bulk kind writes. Bulk writes to different tables commute (no foreign
# key joins them, and no trigger of one reads another: the user-version and notify
# triggers write their own tables, a user delete's trigger only confirmed networks), so
# a run is cut only by a different kind on its own table or by a structural event.
_TABLE: dict[type, str] = {
    AccountUpserted: "accounts",
    UserUpserted: "users",
    UserLocationChanged: "users",
    UserDeleted: "users",
    LocationUpserted: "locations",
    IpGroupUpserted: "ip_groups",
}


async def apply_changes(conn: asyncpg.Connection, changes: Sequence[DirectoryChange]) -> None:
    """Apply the batch's directory changes: per table, in order, runs of one bulk kind
    at once (an import interleaves locations and their IP groups: still two runs)."""
    runs: dict[str, tuple[type, dict[_Key, Any]]] = {}

    async def flush_all() -> None:
        for kind, run in runs.values():
            await _flush(conn, kind, run)
        runs.clear()

    for change in changes:
        table = _TABLE.get(type(change))
        if table is None:  # structural: everything before it first, then it alone
            await flush_all()
            await apply_change(conn, change)
            continue
        pending = runs.get(table)
        if pending is not None and pending[0] is not type(change):
            await _flush(conn, *pending)
            pending = None
        if pending is None:
            pending = runs[table] = (type(change), {})
        pending[1][_key(change)] = change  # the last event per key wins
    await flush_all()
