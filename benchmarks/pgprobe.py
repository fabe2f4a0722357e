"""What ``benchmarks.million`` reads from PostgreSQL, two independent ways.

- From /proc: utime + stime of every process of the cluster, by kind (client
  backends; the background writer, checkpointer, WAL writer, autovacuum and the rest;
  the postmaster itself and the children it has reaped, whose time the kernel adds to
  its cutime/cstime). Summed over a window, that is every CPU second PostgreSQL spent,
  whoever asked for it.
- From PostgreSQL itself: the WAL position (``pg_current_wal_lsn()``: bytes written to
  the WAL), commits and rows of the database (``pg_stat_database``), and, where the
  server has it loaded, ``pg_stat_statements`` (calls, ``total_exec_time``,
  ``total_plan_time``, ``wal_bytes`` of the benchmark's database).

A snapshot is taken at each end of a window; :func:`delta` subtracts them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

_TICK = os.sysconf("SC_CLK_TCK")

# The first word(s) after "postgres: " in a backend's title (ps display), mapped to a
# kind; a client backend's title is "postgres: <user> <db> <client> <state>".
_BACKGROUND = {
    "checkpointer": "checkpointer",
    "background writer": "background writer",
    "walwriter": "WAL writer",
    "autovacuum launcher": "autovacuum",
    "autovacuum worker": "autovacuum",
    "logical replication launcher": "other background",
    "logger": "other background",
    "stats collector": "other background",
}


REAPED = "exited processes (reaped)"


def _stat(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _kind(pid: str) -> str:
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    title = title.removeprefix("postgres: ").strip()
    for prefix, kind in _BACKGROUND.items():
        if title.startswith(prefix):
            return kind
    return "client backends"


def process_cpu(postmaster: int) -> dict[str, float]:
    """CPU seconds (user + system) of the cluster's processes, by kind, cumulative.

    The postmaster's reaped children (its cutime + cstime) are a kind of their own: a
    backend that exits within a window (an autovacuum worker, a short connection such
    as the probe's own) moves its time from its kind to there, so only the sum over
    kinds is exact across such a window (:func:`delta` nets it); kinds are exact for
    processes that live through it (the daemon's pool does).
    """
    out: dict[str, float] = {}
    own = _stat(postmaster)
    if own is not None:
        out["postmaster"] = (int(own[11]) + int(own[12])) / _TICK
        out[REAPED] = (int(own[13]) + int(own[14])) / _TICK
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(entry.name)
        if stat is None or int(stat[1]) != postmaster:
            continue
        kind = _kind(entry.name)
        out[kind] = out.get(kind, 0.0) + (int(stat[11]) + int(stat[12])) / _TICK
    return out


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Cumulative counters at one instant; subtract two with :func:`delta`."""

    cpu: dict[str, float]
    wal_bytes: float
    commits: float
    rows_written: float
    statements: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Window:
    """What PostgreSQL did between two snapshots."""

    cpu: dict[str, float]
    wal_bytes: float
    commits: float
    rows_written: float
    statements: dict[str, float]

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())


_STATEMENTS = """
SELECT coalesce(sum(calls), 0)::float8 AS calls,
       coalesce(sum(total_exec_time), 0)::float8 AS exec_ms,
       coalesce(sum(total_plan_time), 0)::float8 AS plan_ms,
       coalesce(sum(wal_bytes), 0)::float8 AS wal_bytes
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)
"""


async def has_statements(admin_dsn: str) -> bool:
    """True when pg_stat_statements is preloaded (its view answers once created)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        loaded = await conn.fetchval("SELECT current_setting('shared_preload_libraries')")
        if "pg_stat_statements" not in str(loaded):
            return False
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True
    finally:
        await conn.close()


async def snapshot(admin_dsn: str, database: str, postmaster: int, *, statements: bool) -> Snapshot:
    """One reading of everything above; ``database`` is the benchmark's scratch one."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        lsn = await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        row = await conn.fetchrow(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted AS rows"
            " FROM pg_stat_database WHERE datname = $1",
            database,
        )
        stats: dict[str, float] = {}
        if statements:
            got = await conn.fetchrow(_STATEMENTS, database)
            assert got is not None
            stats = {k: float(v) for k, v in got.items()}
    finally:
        await conn.close()
    # Read last: the probe's own backend has done its work by then.
    cpu = process_cpu(postmaster)
    return Snapshot(
        cpu=cpu,
        wal_bytes=float(lsn),
        commits=float(row["xact_commit"]) if row else 0.0,
        rows_written=float(row["rows"]) if row else 0.0,
        statements=stats,
    )


def delta(before: Snapshot, after: Snapshot) -> Window:
    """``after - before``. A kind whose processes exited within the window (an
    autovacuum worker, a short connection) loses their earlier time, which the
    kernel moved into the postmaster's reaped time: such a loss is netted there, so
    every kind reads zero or more and the sum stays exact."""
    kinds = set(before.cpu) | set(after.cpu)
    cpu = {k: after.cpu.get(k, 0.0) - before.cpu.get(k, 0.0) for k in sorted(kinds)}
    for kind, spent in list(cpu.items()):
        if spent < 0 and kind != REAPED:
            cpu[REAPED] = cpu.get(REAPED, 0.0) + spent
            cpu[kind] = 0.0
    return Window(
        cpu=cpu,
        wal_bytes=after.wal_bytes - before.wal_bytes,
        commits=after.commits - before.commits,
        rows_written=after.rows_written - before.rows_written,
        statements={k: v - before.statements.get(k, 0.0) for k, v in after.statements.items()},
    )
