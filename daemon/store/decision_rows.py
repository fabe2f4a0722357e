"""Reading the inputs memory decides checks from (daemon/core/memo.py), set-based.

Sessions: one query for every session of a chunk that memory does not hold (a first
check, or after a change). Accounts: one snapshot (REPEATABLE READ) per read for the
toggle, the input versions, every user and their confirmed networks; the directory
comes from the shared snapshot cache at (at least) the version read.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import asyncpg

from e911d.daemon.core.decision_inputs import AccountInputs, SessionInputs, Shared, UserInputs
from e911d.daemon.core.model import Account, User
from e911d.daemon.store.confirmed_networks import LearningConfig
from e911d.daemon.store.db import load_queries
from e911d.daemon.store.directory import DirectoryCache
from e911d.daemon.store.session_record import session_address, session_network, user_confirmed

SQL = load_queries("decision_inputs.sql")


async def read_sessions(
    conn: asyncpg.Connection, session_ids: Sequence[str], shared: Shared
) -> list[tuple[str, SessionInputs]]:
    """The active ones among ``session_ids``, with their open alert."""
    return _sessions(await conn.fetch(SQL["session_inputs"], list(session_ids)), shared)


async def read_partition(
    conn: asyncpg.Connection, partition: int, shared: Shared
) -> list[tuple[str, SessionInputs]]:
    """Every active session of ``partition``, with its open alert: one query."""
    return _sessions(await conn.fetch(SQL["partition_inputs"], partition), shared)


def _sessions(rows: Sequence[asyncpg.Record], shared: Shared) -> list[tuple[str, SessionInputs]]:
    out: list[tuple[str, SessionInputs]] = []
    for r in rows:
        inputs = shared.session(
            r["account_id"],
            r["user_id"],
            session_address(r),
            session_network(r),
            r["fingerprint"],
            r["alert_location_id"],
        )
        out.append((r["session_id"], inputs))
    return out


async def read_accounts(
    conn: asyncpg.Connection,
    account_ids: Sequence[str],
    cache: DirectoryCache,
    learning: LearningConfig,
    now: dt.datetime,
    shared: Shared,
    started: int,
) -> list[AccountInputs]:
    """The accounts, each as one consistent snapshot tagged with its versions."""
    ids = sorted(set(account_ids))
    if not ids:
        return []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        heads = await conn.fetch(SQL["account_inputs"], ids)
        users = await conn.fetch(SQL["user_inputs"], ids, now - learning.ttl)
        known = {r["account_id"]: r["dir_version"] for r in heads if r["account_known"]}
        directories = await cache.get_many(conn, known)
    by_account: dict[str, dict[str, UserInputs]] = {a: {} for a in ids}
    ttl = learning.ttl.total_seconds()
    for r in users:
        account_id, user_id = shared.name(r["account_id"]), shared.name(r["user_id"])
        location_id = r["e911_location_id"]
        location_id = None if location_id is None else shared.name(location_id)
        user = User(account_id, user_id, r["e911_recommendations"], location_id)
        confirmed = user_confirmed(r, account_id, user_id, learning.prefixes)
        until = math.inf if confirmed is None else r["confirmed_oldest"].timestamp() + ttl
        by_account[r["account_id"]][user_id] = UserInputs(user, confirmed, until)
    return [
        AccountInputs(
            r["account_id"],
            Account(r["account_id"], r["account_enabled"]) if r["account_known"] else None,
            directories.get(r["account_id"]),
            (r["dir_version"], r["user_version"]),
            by_account[r["account_id"]],
            started,
        )
        for r in heads
    ]
