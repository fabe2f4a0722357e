"""The outbox: alert events decided and committed, waiting for the relay to publish.

Rows are written with the alert transitions (:mod:`e911d.daemon.store.alerts`); the
relay reads a batch of its own partitions, publishes, and deletes it in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from e911d.daemon.store.db import load_queries

SQL = load_queries("outbox.sql")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    key: bytes
    value: bytes


async def outbox_batch(
    conn: asyncpg.Connection, partitions: Sequence[int], limit: int, hold_ms: int
) -> list[OutboxRow]:
    """The oldest pending events of these partitions, locked until the transaction ends,
    without the keys that another relay holds an older event of (see outbox.sql). The
    server ends the transaction if it stays idle ``hold_ms``."""
    await conn.execute(SQL["outbox_hold_limit"], str(hold_ms))
    rows = await conn.fetch(SQL["outbox_batch"], list(partitions), limit)
    return [OutboxRow(r["id"], r["topic"], r["key"], r["value"]) for r in rows]


def waves(rows: Sequence[OutboxRow]) -> list[list[OutboxRow]]:
    """Rows (in outbox order) as waves with one row per key each: the first row of every
    key, then the second, ... Each key's rows keep their order across the waves."""
    out: list[list[OutboxRow]] = []
    depth: dict[bytes, int] = {}
    for row in rows:
        n = depth.get(row.key, 0)
        depth[row.key] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(row)
    return out


async def outbox_delete(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    await conn.execute(SQL["outbox_delete"], list(ids))


async def outbox_pending(conn: asyncpg.Connection) -> tuple[int, float]:
    """How many events wait, and the oldest one's age in seconds (0 when none)."""
    row = await conn.fetchrow(SQL["outbox_pending"])
    assert row is not None  # noqa: S101  an aggregate always returns one row
    return int(row["pending"]), float(row["oldest_age_seconds"])
