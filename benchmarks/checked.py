"""The cost of the sessions-checked record: the day's set in memory and
the chunk's upsert in PostgreSQL.

``python -m benchmarks.checked [--sessions 1000000] [--rows 1000000]`` measures

- the memory of :class:`~e911d.daemon.core.checked_today.CheckedToday` holding ``--sessions``
  ids (``tracemalloc``), when the ids are the schedule's own strings (the tick path:
  the set adds only its table) and when each id is a string of its own (ids that
  came from a database row, as in an immediate re-evaluation);
- the time to claim them all, and of a steady-state chunk (2,000 ids all already
  recorded today: what every other check of the day costs);
- one 1,000-row ``record_checked`` upsert on the embedded PostgreSQL, into a table
  already holding ``--rows`` rows: new sessions (inserts) and the next day's write of
  known ones (updates), the median of 20 statements each.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Sequence

import asyncpg

from benchmarks.harness import report, scratch_database
from e911d.daemon.commands.embedded import EmbeddedPostgres
from e911d.daemon.core.checked_today import CheckedToday
from e911d.daemon.runtime.logs import configure_logging
from e911d.daemon.store.db import load_queries, migrate

SQL = load_queries("checked.sql")
CHUNK = 1_000
STEADY_CHUNK = 2_000
REPEAT = 20
DAY = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)


def _ids(n: int, prefix: str = "") -> list[str]:
    return [f"{prefix}{uuid.UUID(int=i)}" for i in range(n)]


def memory(sessions: int) -> list[str]:
    ids = _ids(sessions)
    pairs = [(sid, "acme") for sid in ids]
    tracemalloc.start()
    today = CheckedToday()
    started = time.perf_counter()
    today.claim(pairs, DAY)
    claim_s = time.perf_counter() - started
    shared, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    steady = pairs[:STEADY_CHUNK]
    started = time.perf_counter()
    for _ in range(100):
        today.claim(steady, DAY)
    steady_us = (time.perf_counter() - started) / 100 * 1e6
    del today, pairs, ids
    tracemalloc.start()
    fresh = CheckedToday()
    fresh.claim(((sid, "acme") for sid in _ids(sessions)), DAY)
    own, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del fresh
    return [
        f"| set of {sessions:,} ids, the schedule's strings (tick path) "
        f"| {shared / 2**20:,.1f} MiB ({shared / sessions:.0f} B/session) |",
        f"| set of {sessions:,} ids, strings of their own (database rows) "
        f"| {own / 2**20:,.1f} MiB ({own / sessions:.0f} B/session) |",
        f"| claim {sessions:,} new ids | {claim_s:.2f} s |",
        f"| claim a chunk of {STEADY_CHUNK:,} ids already recorded today | {steady_us:,.0f} µs |",
    ]


async def _upserts(conn: asyncpg.Connection, ids: list[str], at: dt.datetime) -> float:
    started = time.perf_counter()
    await conn.execute(SQL["record_checked"], ids, ["acme"] * len(ids), at)
    return time.perf_counter() - started


async def database(admin_dsn: str, rows: int) -> list[str]:
    async with scratch_database(admin_dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            await conn.execute(
                "INSERT INTO checked_sessions"
                " SELECT 'old-' || i, 'a' || (i % 100), $2, $2 FROM generate_series(1, $1) i",
                rows,
                DAY - dt.timedelta(days=1),
            )
            await conn.execute("VACUUM ANALYZE checked_sessions")
            fresh = _ids(CHUNK * REPEAT, "new-")
            chunks = [fresh[i : i + CHUNK] for i in range(0, len(fresh), CHUNK)]
            inserts = [await _upserts(conn, c, DAY) for c in chunks]
            updates = [await _upserts(conn, c, DAY + dt.timedelta(days=1)) for c in chunks]
        finally:
            await conn.close()
    return [
        f"| upsert {CHUNK:,} new sessions ({rows:,} rows in the table) "
        f"| {statistics.median(inserts) * 1000:.1f} ms (median of {REPEAT}) |",
        f"| upsert {CHUNK:,} known sessions, the next day "
        f"| {statistics.median(updates) * 1000:.1f} ms (median of {REPEAT}) |",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.checked", description=__doc__)
    p.add_argument("--sessions", type=int, default=1_000_000)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--no-write-readme", action="store_true")
    args = p.parse_args(argv)
    configure_logging("json", "error")
    lines = memory(args.sessions)
    pg = EmbeddedPostgres().start()
    try:
        lines += asyncio.run(database(pg.dsn, args.rows))
    finally:
        pg.stop()
    table = "\n".join(["| what | cost |", "| --- | ---: |", *lines])
    command = (
        "python -m benchmarks.checked"
        + (f" --sessions {args.sessions}" if args.sessions != 1_000_000 else "")
        + (f" --rows {args.rows}" if args.rows != 1_000_000 else "")
    )
    report("checked", command, table, write=not args.no_write_readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
