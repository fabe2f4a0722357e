"""What an import's impact reads (docs/spec.md#impact-before-import): the accounts,
users and dismissal snoozes of the file's accounts, and their live sessions in chunks.

Every call runs on the caller's transaction; the impact runs them all in the import's
one read-only snapshot.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import AsyncIterator, Sequence

import asyncpg

from e911d.daemon.core.ip import IPAddress
from e911d.daemon.core.model import Account, ConfirmedNetwork, User
from e911d.daemon.store.db import load_queries
from e911d.daemon.store.session_record import entries_of_arrays

SQL = load_queries("impact.sql")

# The columns of a session row, by position (the hot loop indexes, not names).
SESSION_ID, ACCOUNT_ID, USER_ID, IP, BSSID, CHASSIS, PORT, ALERT_ID, FINGERPRINT, ALERT_LOCATION = (
    range(10)
)


async def accounts_of(conn: asyncpg.Connection, account_ids: Sequence[str]) -> dict[str, Account]:
    rows = await conn.fetch(SQL["impact_accounts"], list(account_ids))
    return {r["account_id"]: Account(r["account_id"], r["e911_recommendations"]) for r in rows}


async def users_of(
    conn: asyncpg.Connection, account_ids: Sequence[str]
) -> dict[str, dict[str, User]]:
    """Per account, its users by id: one value per user, shared by all their sessions."""
    out: dict[str, dict[str, User]] = {a: {} for a in account_ids}
    for r in await conn.fetch(SQL["impact_users"], list(account_ids)):
        account_id, user_id = r["account_id"], r["user_id"]
        out[account_id][user_id] = User(
            account_id, user_id, r["e911_recommendations"], r["e911_location_id"]
        )
    return out


async def confirmed_of(
    conn: asyncpg.Connection, account_ids: Sequence[str], cutoff: dt.datetime
) -> dict[str, dict[str, tuple[ConfirmedNetwork, ...]]]:
    """Per account, per user, the networks the user confirmed that a check would still
    read (confirmed after ``cutoff``); users with none are absent."""
    grouped: dict[tuple[str, str], tuple[list[str], list[str], list[str]]] = {}
    for r in await conn.fetch(SQL["impact_confirmed"], list(account_ids), cutoff):
        kinds, keys, locations = grouped.setdefault((r["account_id"], r["user_id"]), ([], [], []))
        kinds.append(r["key_kind"])
        keys.append(r["network_key"])
        locations.append(r["location_id"])
    out: dict[str, dict[str, tuple[ConfirmedNetwork, ...]]] = {a: {} for a in account_ids}
    for (account_id, user_id), (kinds, keys, locations) in grouped.items():
        entries = entries_of_arrays(account_id, user_id, kinds, keys, locations)
        if entries:
            out[account_id][user_id] = entries
    return out


async def snoozes_of(
    conn: asyncpg.Connection, account_ids: Sequence[str], since: dt.datetime
) -> dict[str, frozenset[str]]:
    """Per session, the fingerprints dismissed since ``since`` (what a check holds back)."""
    out: dict[str, set[str]] = {}
    for r in await conn.fetch(SQL["impact_snoozes"], list(account_ids), since):
        out.setdefault(r["session_id"], set()).add(r["fingerprint"])
    return {sid: frozenset(fps) for sid, fps in out.items()}


async def live_sessions(
    conn: asyncpg.Connection,
    account_ids: Sequence[str],
    chunk: int,
    part: tuple[int, int] = (0, 1),
) -> AsyncIterator[list[asyncpg.Record]]:
    """The live sessions of these accounts, ``chunk`` rows at a time through a
    server-side cursor (binary, only the columns a check decides from): memory stays
    bounded by the chunk whatever the number of sessions. ``part``: (k, n), only the
    k-th of n disjoint parts, split by a hash of the session id. Must run in a
    transaction."""
    k, n = part
    cursor = await conn.cursor(SQL["impact_sessions"], list(account_ids), n, k)
    while rows := await cursor.fetch(chunk):
        yield rows


def address_of(value: object) -> IPAddress:
    """A session's ``ip`` as the driver decoded it from binary: a host address, or an
    interface when it was stored with a mask (checks read it the same way)."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value.ip
    return ipaddress.ip_address(str(value))


async def export_snapshot(conn: asyncpg.Connection) -> str:
    """This transaction's snapshot id, valid while it is open (pg_export_snapshot)."""
    snapshot: str = await conn.fetchval(SQL["export_snapshot"])
    return snapshot


async def use_snapshot(conn: asyncpg.Connection, snapshot: str) -> None:
    """Make the transaction just begun (REPEATABLE READ) see ``snapshot``: the first
    statement of that transaction."""
    await conn.execute(f"SET TRANSACTION SNAPSHOT '{_snapshot_id(snapshot)}'")


def _snapshot_id(snapshot: str) -> str:
    # An id as PostgreSQL makes them ("00000003-0000001B-1"): no quote can slip in.
    if not snapshot or any(c not in "0123456789ABCDEFabcdef-" for c in snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    return snapshot
