"""Checks of matched sessions: the database path against the memory path.

``python -m benchmarks.checks_memory [--sessions 100000]`` fills a scratch database on
the embedded PostgreSQL with one pass worth of matched sessions (one account, 50
locations with a /24 each, four sessions a user), then times a full pass of due checks
three times, as the ``checks`` tick runs them (chunks of ``batch_size``): every check
locked and read in a transaction (what every check did before checks were decided from memory); one
read
without locks per chunk (what a check with no memo does now: a first check, or
one after a change); from memory (one version read per pass, then a comparison per
session: the steady state). No pass raises anything. No broker is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from benchmarks.harness import report, scratch_database
from e911d.daemon.commands.embedded import EmbeddedPostgres
from e911d.daemon.core.memo import MemoBook
from e911d.daemon.runtime.logs import configure_logging
from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.check_batches import SQL, CheckConfig, CheckRunner
from e911d.daemon.store.db import _init_connection, migrate
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


async def _fill(conn: asyncpg.Connection, sessions: int) -> None:
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
    users = max(1, sessions // 4)
    await conn.execute(
        "INSERT INTO users SELECT 'acme', 'u' || i, false, 'l' || (i % $2)"
        " FROM generate_series(0, $1 - 1) i",
        users,
        LOCATIONS,
    )
    await conn.execute(
        "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
        " last_event_at, kafka_partition)"
        " SELECT 's' || i, 'acme', 'u' || (i % $2),"
        " ('10.0.' || ((i % $2) % $3) || '.' || (1 + i % 200))::inet,"
        " now() - interval '1 hour', now(), 0"
        " FROM generate_series(0, $1 - 1) i",
        sessions,
        users,
        LOCATIONS,
    )
    await conn.execute("ANALYZE")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _pass(
    pool: asyncpg.Pool,
    schedule: CheckSchedule,
    book: MemoBook,
    runner: CheckRunner,
    at: float,
    *,
    path: str,
) -> Pass:
    """One tick draining every session, as services/checks.py ``Checks.tick`` does.

    ``path``: "locked" (every check locks its session: the design before memos), "screened"
    (one read without locks; only transitions lock), "memory" (memos first).
    """
    started, cpu = time.perf_counter(), _cpu()
    checked = in_memory = 0
    if path == "memory":
        begun = book.refresh_begin()
        async with pool.acquire() as conn:
            rows = await conn.fetch(SQL["input_versions"])
        book.refresh_end(begun, [(r[0], r[1], r[2]) for r in rows])
    while due := schedule.pop_due(at, BATCH):
        if path == "memory":
            ask = [d.session_id for d in due if book.decide(d.memo) is None]
        else:
            ask = [d.session_id for d in due]
        in_memory += len(due) - len(ask)
        if ask:
            token = book.begin()
            async with pool.acquire() as conn:
                now = dt.datetime.now(dt.UTC)
                report = await runner.check(conn, ask, now, screen=path != "locked")
            book.end(token, report.memos)
        checked += len(due)
    name = {
        "locked": "PostgreSQL, every check locked (before)",
        "screened": "PostgreSQL, read without locks (first checks now)",
        "memory": "memory (steady state now)",
    }[path]
    if path == "memory" and in_memory != checked:
        name += f" ({checked - in_memory:,} asked PostgreSQL)"
    return Pass(name, checked, time.perf_counter() - started, _cpu() - cpu)


async def measure(admin_dsn: str, sessions: int) -> list[Pass]:
    async with scratch_database(admin_dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await _fill(conn, sessions)
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
            for i, path in enumerate(("locked", "screened", "memory")):
                at = 1.0 + i * schedule.interval
                passes.append(await _pass(pool, schedule, book, runner, at, path=path))
        return passes


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.checks_memory", description=__doc__)
    p.add_argument("--sessions", type=int, default=100_000)
    p.add_argument("--no-write-readme", action="store_true")
    args = p.parse_args(argv)
    configure_logging("json", "error")
    pg = EmbeddedPostgres().start()
    try:
        passes = asyncio.run(measure(pg.dsn, args.sessions))
    finally:
        pg.stop()
    table = "\n".join(
        [
            f"{args.sessions:,} matched sessions, one account, batches of {BATCH:,}",
            "",
            "| path | checks | seconds | checks/s | daemon CPU s per 1,000 checks |",
            "| --- | ---: | ---: | ---: | ---: |",
            *(result.row() for result in passes),
        ]
    )
    command = "python -m benchmarks.checks_memory" + (
        f" --sessions {args.sessions}" if args.sessions != 100_000 else ""
    )
    report("checks_memory", command, table, write=not args.no_write_readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
