"""Networks nobody configured (docs/spec.md#networks-nobody-configured): the day's
sightings written off the check path, their daily summary, its purge.

The bookkeeping of what to write is :mod:`e911d.daemon.core.unlocated`; the statements
are in ``sql/unconfigured.sql``; migration 0007 says what each table keeps, and for how
long.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from e911d.daemon.core.unlocated import Sighting
from e911d.daemon.store.db import load_queries

SQL = load_queries("unconfigured.sql")


@dataclass(frozen=True, slots=True)
class Summary:
    """What one summarising pass did."""

    sightings: int  # rows of finished days turned into counts and deleted
    kept: int  # (account, day, network) rows written
    dropped: int  # networks beyond the per-account-day bound, not kept


async def record_sightings(
    conn: asyncpg.Connection, day: dt.date, sightings: Sequence[Sighting]
) -> None:
    """One idempotent insert for many sightings of ``day``."""
    await conn.execute(
        SQL["record_sightings"],
        day,
        [s.account_id for s in sightings],
        [str(s.key.kind) for s in sightings],
        [s.key.value for s in sightings],
        [s.session_id for s in sightings],
        [s.user_id for s in sightings],
    )


async def summarise_days(
    conn: asyncpg.Connection, before: dt.date, per_account_day: int
) -> Summary:
    """Turn the sightings of the days before ``before`` into counts, keeping the
    busiest ``per_account_day`` networks of each account and day."""
    row = await conn.fetchrow(SQL["summarise_days"], before, per_account_day)
    assert row is not None  # noqa: S101  a SELECT of three aggregates returns one row
    return Summary(row["sightings"], row["kept"], row["dropped"])


async def purge_unconfigured(conn: asyncpg.Connection, before: dt.date) -> None:
    await conn.execute(SQL["purge_unconfigured"], before)
