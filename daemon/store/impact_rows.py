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
from e911d.daemon.core.model import Account, User
from e911d.daemon.store.db import load_queries

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


async def snoozes_of(
    conn: asyncpg.Connection, account_ids: Sequence[str], since: dt.datetime
) -> dict[str, frozenset[str]]:
    """Per session, the fingerprints dismissed since ``since`` (what a check holds back)."""
    out: dict[str, set[str]] = {}
    for r in await conn.fetch(SQL["impact_snoozes"], list(account_ids), since):
        out.setdefault(r["session_id"], set()).add(r["fingerprint"])
    return {sid: frozenset(fps) for sid, fps in out.items()}


async def live_sessions(
    conn: asyncpg.Connection, account_ids: Sequence[str], chunk: int
) -> AsyncIterator[list[asyncpg.Record]]:
    """The live sessions of these accounts, ``chunk`` rows at a time through a
    server-side cursor (binary, only the columns a check decides from): memory stays
    bounded by the chunk whatever the number of sessions. Must run in a transaction."""
    cursor = await conn.cursor(SQL["impact_sessions"], list(account_ids))
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
