"""Checks of matched sessions: the database path against the memory path.

``python -m benchmarks.checks_memory [--sessions 100000]`` fills a scratch database on
the embedded PostgreSQL with one pass worth of matched sessions (one account, 50
locations with a /24 each, four sessions a user), then times a full pass of due checks
four times, as the ``checks`` tick runs them (chunks of ``batch_size``): every check
locked and read in a transaction (what every check did before checks were decided
from memory); one read without locks per chunk (the database path's screen); in
memory on a cold start (first checks: each chunk's sessions and their account read
set-based, then decided in memory); in memory with everything held (the steady
state). No pass raises anything. No broker is needed. It also measures, with
tracemalloc, what memory holds per session and per user (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from benchmarks.harness import report, scratch_database
from e911d.daemon.commands.embedded import EmbeddedPostgres
from e911d.daemon.core.memo import MemoBook
from e911d.daemon.runtime.logs import configure_logging
from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.check_batches import SQL, CheckConfig, CheckRunner
from e911d.daemon.store.confirmed_networks import LearningConfig
from e911d.daemon.store.db import _init_connection, migrate
from e911d.daemon.store.decision_rows import read_accounts, read_sessions
from e911d.daemon.store.directory import DirectoryCache
from e911d.schedulers import CheckSchedule

LOCATIONS = 50
BATCH = 2_000


@dataclass(frozen=True, slots=True)
class Pass:
    path: str
    checks: int
    seconds: float
    cpu_seconds: float

    def row(self) -> str:
        rate = self.checks / self.seconds if self.seconds else float("inf")
        return (
            f"| {self.path} | {self.checks:,} | {self.seconds:.2f} | {rate:,.0f} "
            f"| {1000 * self.cpu_seconds / max(self.checks, 1):.3f} |"
        )


async def fill_account(conn: asyncpg.Connection) -> None:
    """The schema and one account of LOCATIONS locations, each with an IP group of its
    own /24 (10.0.i.0/24): the directory both checks benchmarks decide against."""
    await migrate(conn)
    await conn.execute("INSERT INTO accounts VALUES ('acme', true)")
    await conn.execute(
        "INSERT INTO locations (account_id, location_id, name, address)"
        " SELECT 'acme', 'l' || i, 'L' || i, '{}' FROM generate_series(0, $1 - 1) i",
        LOCATIONS,
    )
    await conn.execute(
        "INSERT INTO ip_groups (account_id, ip_group_id, name, location_id, addresses)"
        " SELECT 'acme', 'g' || i, 'G' || i, 'l' || i, ARRAY['10.0.' || i || '.0/24']"
        " FROM generate_series(0, $1 - 1) i",
        LOCATIONS,
    )
    await conn.execute(
        "INSERT INTO ip_group_networks"
        " SELECT 'acme', 'g' || i, ('10.0.' || i || '.0/24')::cidr"
        " FROM generate_series(0, $1 - 1) i",
        LOCATIONS,
    )


async def fill_sessions(
    conn: asyncpg.Connection, sessions: int, users: int, *, shift: int, partitions: int
) -> None:
    """:func:`fill_account`, then ``users`` users and ``sessions`` sessions of user
    ``i % users`` over ``partitions`` partitions. User j is on network j % LOCATIONS
    and assigned location (j + shift) % LOCATIONS: shift 0 matches, shift 1 is a
    mismatch for everyone."""
    await fill_account(conn)
    await conn.execute(
        "INSERT INTO users SELECT 'acme', 'u' || i, false, 'l' || ((i + $3) % $2)"
        " FROM generate_series(0, $1 - 1) i",
        users,
        LOCATIONS,
        shift,
    )
    await conn.execute(
        "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
        " last_event_at, kafka_partition)"
        " SELECT 's' || i, 'acme', 'u' || (i % $2),"
        " ('10.0.' || ((i % $2) % $3) || '.' || (1 + i % 200))::inet,"
        " now() - interval '1 hour', now(), i % $4"
        " FROM generate_series(0, $1 - 1) i",
        sessions,
        users,
        LOCATIONS,
        partitions,
    )
    await conn.execute("ANALYZE")


def cpu_seconds() -> float:
    """This process's CPU time (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _hold(
    pool: asyncpg.Pool, book: MemoBook, cache: DirectoryCache, session_ids: list[str]
) -> None:
    """What ``Checks._prepare`` does for a chunk: read what memory lacks."""
    sessions, accounts = book.missing(session_ids)
    async with pool.acquire() as conn:
        if sessions:
            token = book.begin()
            rows = await read_sessions(conn, sessions, book.shared)
            book.sessions_read(token, rows)
            accounts.update(s.account_id for _, s in rows if book.account_due(s.account_id))
        if accounts:
            token = book.begin()
            now = dt.datetime.now(dt.UTC)
            held = await read_accounts(
                conn, sorted(accounts), cache, LearningConfig(), now, book.shared, token
            )
            book.accounts_read(token, held)


async def _pass(
    pool: asyncpg.Pool,
    schedule: CheckSchedule,
    book: MemoBook,
    runner: CheckRunner,
    at: float,
    *,
    path: str,
    cache: DirectoryCache,
) -> Pass:
    """One tick draining every session, as services/checks.py ``Checks.tick`` does.

    ``path``: "locked" (every check locks its session: the design before memory),
    "screened" (one read without locks; only transitions lock), "cold" (memory, nothing
    held yet: first checks), "memory" (everything held: the steady state).
    """
    started, cpu = time.perf_counter(), cpu_seconds()
    checked = in_memory = 0
    in_mem = path in ("cold", "memory")
    if in_mem:
        begun = book.refresh_begin()
        async with pool.acquire() as conn:
            rows = await conn.fetch(SQL["input_versions"])
        book.refresh_end(begun, [(r[0], r[1], r[2]) for r in rows])
    while due := schedule.pop_due(at, BATCH):
        ids = [d.session_id for d in due]
        if in_mem:
            await _hold(pool, book, cache, ids)
            ask = [sid for sid in ids if book.decide(sid) is None]
        else:
            ask = ids
        in_memory += len(due) - len(ask)
        if ask:
            token = book.begin()
            async with pool.acquire() as conn:
                now = dt.datetime.now(dt.UTC)
                await runner.check(conn, ask, now, screen=path != "locked")
            book.end(token, ask)
        checked += len(due)
    name = {
        "locked": "PostgreSQL, every check locked (before)",
        "screened": "PostgreSQL, read without locks (the database path's screen)",
        "cold": "memory, nothing held yet (first checks: inputs read per chunk)",
        "memory": "memory, everything held (steady state)",
    }[path]
    if in_mem and in_memory != checked:
        name += f" ({checked - in_memory:,} asked PostgreSQL)"
    return Pass(name, checked, time.perf_counter() - started, cpu_seconds() - cpu)


@dataclass(frozen=True, slots=True)
class Footprint:
    users: int
    sessions: int
    bytes_per_user: float
    bytes_per_session: float


async def footprint(pool: asyncpg.Pool, sessions: int) -> Footprint:
    """What holding the inputs costs, measured with tracemalloc: the account's users
    read first, then every session's row and open alert into a fresh schedule (the
    schedule's own entry is not counted: it exists either way)."""
    schedule = CheckSchedule(0.0, 300.0)
    ids = [f"s{i}" for i in range(sessions)]
    for sid in ids:
        schedule.add(sid, 0.0, 0, 0.0)
    book = MemoBook(schedule)
    cache = DirectoryCache()
    async with pool.acquire() as conn:
        now = dt.datetime.now(dt.UTC)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        token = book.begin()
        held = await read_accounts(conn, ["acme"], cache, LearningConfig(), now, book.shared, token)
        book.accounts_read(token, held)
        del held
        after_users = tracemalloc.get_traced_memory()[0]
        for i in range(0, sessions, BATCH):
            token = book.begin()
            rows = await read_sessions(conn, ids[i : i + BATCH], book.shared)
            book.sessions_read(token, rows)
            del rows
        after_sessions = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    users = book.held()[1]
    # The directory snapshot (50 locations) is in the first figure: negligible per user.
    return Footprint(
        users,
        sessions,
        (after_users - base) / max(users, 1),
        (after_sessions - after_users) / max(sessions, 1),
    )


async def measure(admin_dsn: str, sessions: int) -> tuple[list[Pass], Footprint]:
    async with scratch_database(admin_dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await fill_sessions(conn, sessions, max(1, sessions // 4), shift=0, partitions=1)
        finally:
            await conn.close()
        schedule = CheckSchedule(0.0, 300.0)
        for i in range(sessions):
            schedule.add(f"s{i}", 0.0, 0, 0.0)
        book = MemoBook(schedule)
        runner = CheckRunner(
            AlertStore("alerts", "urn:bench"), DirectoryCache(), CheckConfig(dt.timedelta(0))
        )
        async with asyncpg.create_pool(dsn, min_size=1, max_size=2, init=_init_connection) as pool:
            # Each pass at a clock one interval later: every session is due once.
            passes = []
            cache = DirectoryCache()
            for i, path in enumerate(("locked", "screened", "cold", "memory")):
                at = 1.0 + i * schedule.interval
                passes.append(await _pass(pool, schedule, book, runner, at, path=path, cache=cache))
            size = await footprint(pool, sessions)
        return passes, size


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.checks_memory", description=__doc__)
    p.add_argument("--sessions", type=int, default=100_000)
    p.add_argument("--no-write-readme", action="store_true")
    args = p.parse_args(argv)
    configure_logging("json", "error")
    pg = EmbeddedPostgres().start()
    try:
        passes, size = asyncio.run(measure(pg.dsn, args.sessions))
    finally:
        pg.stop()
    table = "\n".join(
        [
            f"{args.sessions:,} matched sessions, one account, batches of {BATCH:,}",
            "",
            "| path | checks | seconds | checks/s | daemon CPU s per 1,000 checks |",
            "| --- | ---: | ---: | ---: | ---: |",
            *(result.row() for result in passes),
            "",
            f"Held in memory (tracemalloc): {size.bytes_per_session:,.0f} bytes a session"
            f" (its row and open alert, beside its schedule entry),"
            f" {size.bytes_per_user:,.0f} bytes a user ({size.users:,} users).",
        ]
    )
    command = "python -m benchmarks.checks_memory" + (
        f" --sessions {args.sessions}" if args.sessions != 100_000 else ""
    )
    report("checks_memory", command, table, write=not args.no_write_readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
