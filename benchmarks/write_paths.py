"""Ingest's set-based writes: arrays through ``unnest`` against binary COPY into a
staging table, on the embedded PostgreSQL.

``python -m benchmarks.write_paths [--rows N] [--rounds R]`` upserts N session rows
(and N users) per transaction, first as inserts then as updates of the same keys, the
way ingest writes a batch: ``unnest`` of parallel arrays in one INSERT ... ON CONFLICT
(what ingest does), or ``copy_records_to_table`` into a temporary table (ON COMMIT
DELETE ROWS) and INSERT ... SELECT ... ON CONFLICT from it. Prints rows/s per path
(the median of R rounds); writes nothing to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from benchmarks.harness import scratch_database
from e911d.daemon.commands.embedded import EmbeddedPostgres
from e911d.daemon.core.session_fold import SessionRow
from e911d.daemon.store.db import PoolConfig, connect_pool, migrate
from e911d.daemon.store.directory_bulk import SQL as BULK
from e911d.daemon.store.sessions import SessionStore

COLUMNS = (
    "session_id account_id user_id ip logged_in_at last_event_at kafka_partition ended_at "
    "alert_seq bssid switch_chassis switch_port"
).split()
STAGE = """CREATE TEMP TABLE IF NOT EXISTS {name} (LIKE {table} INCLUDING DEFAULTS)
ON COMMIT DELETE ROWS"""
FROM_STAGE_SESSIONS = f"""INSERT INTO sessions ({", ".join(COLUMNS)})
SELECT {", ".join(COLUMNS)} FROM stage_sessions
ON CONFLICT (session_id) DO UPDATE SET
{", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])}"""  # noqa: S608  constant column names
FROM_STAGE_USERS = """INSERT INTO users (account_id, user_id, e911_recommendations,
                   e911_location_id)
SELECT account_id, user_id, e911_recommendations, e911_location_id FROM stage_users
ON CONFLICT (account_id, user_id) DO UPDATE
SET e911_recommendations = EXCLUDED.e911_recommendations,
    e911_location_id = EXCLUDED.e911_location_id, updated_at = now()"""


def _sessions(n: int, round_: int) -> list[SessionRow]:
    at = dt.datetime.now(dt.UTC)
    return [
        SessionRow(
            f"s{i}", f"a{i % 100}", f"u{i % 25_000}", f"10.{i % 200}.{round_}.1", at, at, i % 12
        )
        for i in range(n)
    ]


async def _unnest_sessions(conn: asyncpg.Connection, rows: list[SessionRow]) -> None:
    await SessionStore().save(conn, rows)


async def _copy_sessions(conn: asyncpg.Connection, rows: list[SessionRow]) -> None:
    await conn.execute(STAGE.format(name="stage_sessions", table="sessions"))
    records = [
        (
            r.session_id,
            r.account_id,
            r.user_id,
            r.ip,
            r.logged_in_at,
            r.last_event_at,
            r.partition,
            r.ended_at,
            r.alert_seq,
            r.bssid,
            r.switch_chassis,
            r.switch_port,
        )
        for r in rows
    ]
    await conn.copy_records_to_table("stage_sessions", records=records, columns=COLUMNS)
    await conn.execute(FROM_STAGE_SESSIONS)


def _users(n: int, round_: int) -> list[tuple[str, str, bool, str]]:
    return [(f"a{i % 100}", f"u{i}", bool(round_ % 2), f"l{round_ % 5}") for i in range(n)]


async def _unnest_users(conn: asyncpg.Connection, rows: list[tuple[str, str, bool, str]]) -> None:
    await conn.execute(BULK["upsert_users"], *(list(c) for c in zip(*rows, strict=True)))


async def _copy_users(conn: asyncpg.Connection, rows: list[tuple[str, str, bool, str]]) -> None:
    await conn.execute(STAGE.format(name="stage_users", table="users"))
    await conn.copy_records_to_table(
        "stage_users",
        records=rows,
        columns=["account_id", "user_id", "e911_recommendations", "e911_location_id"],
    )
    await conn.execute(FROM_STAGE_USERS)


Writer = Callable[[asyncpg.Connection, list], Awaitable[None]]  # type: ignore[type-arg]


async def _time(
    conn: asyncpg.Connection,
    write: Writer,
    make: Callable[[int, int], list],
    n: int,
    rounds: int,  # type: ignore[type-arg]
) -> tuple[float, float]:
    """Median rows/s of (inserts, updates) over ``rounds`` rounds; emptied between."""
    inserts, updates = [], []
    for r in range(rounds):
        await conn.execute("TRUNCATE sessions, users CASCADE")
        for out in (inserts, updates):
            rows = make(n, r)
            started = time.perf_counter()
            async with conn.transaction():
                await write(conn, rows)
            out.append(n / (time.perf_counter() - started))
    return statistics.median(inserts), statistics.median(updates)


async def run(admin_dsn: str, n: int, rounds: int) -> list[tuple[str, float, float]]:
    async with scratch_database(admin_dsn) as dsn:
        pool = await connect_pool(PoolConfig(dsn, min_size=1, max_size=1))
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                return [
                    (
                        "sessions, unnest",
                        *await _time(conn, _unnest_sessions, _sessions, n, rounds),
                    ),
                    (
                        "sessions, COPY + INSERT",
                        *await _time(conn, _copy_sessions, _sessions, n, rounds),
                    ),
                    ("users, unnest", *await _time(conn, _unnest_users, _users, n, rounds)),
                    ("users, COPY + INSERT", *await _time(conn, _copy_users, _users, n, rounds)),
                ]
        finally:
            await pool.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.write_paths", description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    pg = EmbeddedPostgres().start()
    try:
        results = asyncio.run(run(pg.dsn, args.rows, args.rounds))
    finally:
        pg.stop()
    print(f"| path ({args.rows:,} rows a transaction) | inserts rows/s | updates rows/s |")
    print("|---|--:|--:|")
    for name, ins, upd in results:
        print(f"| {name} | {ins:,.0f} | {upd:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
