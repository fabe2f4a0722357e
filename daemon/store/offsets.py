"""Consumed offsets kept in PostgreSQL, written with the state they produced."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from e911d.consumers.topics import TP
from e911d.daemon.store.db import load_queries

SQL = load_queries("offsets.sql")


async def store_offsets(conn: asyncpg.Connection, group_id: str, offsets: dict[TP, int]) -> None:
    if offsets:
        ordered = sorted(offsets.items())
        await conn.execute(
            SQL["store_offsets"],
            group_id,
            [t for (t, _), _ in ordered],
            [p for (_, p), _ in ordered],
            [o for _, o in ordered],
        )


async def load_offsets(conn: asyncpg.Connection, group_id: str, tps: Iterable[TP]) -> dict[TP, int]:
    wanted = set(tps)
    if not wanted:
        return {}
    records = await conn.fetch(SQL["load_offsets"], group_id, sorted({t for t, _ in wanted}))
    found = {(r["topic"], r["partition"]): r["next_offset"] for r in records}
    return {tp: o for tp, o in found.items() if tp in wanted}


def rewound(stored: dict[TP, int], expected: dict[TP, int]) -> dict[TP, int]:
    """The partitions whose offset in the database is behind the one this process
    stored there before (absent counts as 0), with the database's offset: the
    database lost commits (a failover to a replica that had not received them)."""
    behind = {tp: stored.get(tp, 0) for tp in expected}
    return {tp: offset for tp, offset in behind.items() if offset < expected[tp]}


async def lock_offsets(conn: asyncpg.Connection, group_id: str, tps: Iterable[TP]) -> dict[TP, int]:
    """The stored offsets of these partitions, locked until the transaction ends (a
    partition never stored has none)."""
    wanted = sorted(set(tps))
    if not wanted:
        return {}
    records = await conn.fetch(
        SQL["lock_offsets"], group_id, [t for t, _ in wanted], [p for _, p in wanted]
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in records}
