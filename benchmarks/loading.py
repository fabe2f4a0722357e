"""A restart's load: a million active sessions from PostgreSQL into the schedule.

``python -m benchmarks.loading [--sessions 1000000]`` fills a scratch database on the
embedded PostgreSQL with N active sessions (UUID-shaped ids, logged in over the last
hour, 12 partitions) and loads them as ``Ingest.on_assigned`` does, partition by
partition through a server-side cursor in one read-only transaction, in two designs:

``packed arrays`` (ours)
    ``active_in_partitions`` (daemon/store/sql/sessions.sql): per partition one
    string of ids and three big-endian byte strings, kept as
    :class:`~e911d.schedulers.loaded.LoadedPartition` (no Python object per session)
    until each session's first check takes it into the heap.
``value arrays, an entry each`` (the design of bd7d41c)
    ``array_agg`` of the ids and login times (a Python ``str`` and ``float`` per
    session in the driver), then a heap entry and an index entry per session, as
    ``CheckSchedule.add_many`` did then (reproduced here: the code no longer has it).

Measured per design: the fetch (query and decode), the schedule build, the retained
memory (``tracemalloc``, the driver's transient values excluded once freed), and the
drain: every session popped once (its first check) in chunks of 2,000, which is
where the packed design pays for the entries it did not build at load. Times are
taken with the collector's thresholds as ``e911d run`` sets them
(daemon/runtime/collector.py); the drain also with CPython's defaults. Both designs
run ``--repeat`` times, alternating; the fastest of each step is kept. No broker.
"""

from __future__ import annotations

import gc
import heapq
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from benchmarks.harness import on_postgres, report, scratch_database, sized_run, table
from e911d.daemon.runtime.collector import tune_collector
from e911d.daemon.store.db import migrate
from e911d.daemon.store.sessions import SessionStore
from e911d.schedulers.loaded import LoadedPartition
from e911d.schedulers.schedule import CheckSchedule, next_due_after

DEFAULT_SESSIONS = 1_000_000
DEFAULT_REPEAT = 3
PARTITIONS = 12
INITIAL_DELAY = 600.0
INTERVAL = 300.0
DRAIN_CHUNK = 2_000

# The load of bd7d41c: a str and a float per session in the driver's lists.
VALUE_ARRAYS = """
SELECT kafka_partition, array_agg(session_id) AS ids,
       array_agg(extract(epoch FROM logged_in_at)::float8) AS logged_in_at
FROM sessions
WHERE kafka_partition = ANY($1::int[]) AND ended_at IS NULL
GROUP BY kafka_partition
"""


@dataclass(frozen=True, slots=True)
class Step:
    fetch_s: float
    build_s: float
    retained_bytes: int
    drain_s: float
    drain_default_gc_s: float


async def _fill(conn: asyncpg.Connection, sessions: int) -> None:
    await migrate(conn)
    await conn.execute(
        "INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at,"
        " last_event_at, kafka_partition)"
        " SELECT gen_random_uuid()::text, 'acme', 'u' || (i % 250000), '10.0.0.1'::inet,"
        " now() - random() * interval '1 hour', now(), i % $2"
        " FROM generate_series(0, $1 - 1) i",
        sessions,
        PARTITIONS,
    )
    await conn.execute("VACUUM ANALYZE sessions")


async def _packed(conn: asyncpg.Connection, now: float) -> tuple[CheckSchedule, float, float]:
    schedule = CheckSchedule(INITIAL_DELAY, INTERVAL)
    fetch = build = 0.0
    async with conn.transaction(readonly=True):
        started = time.perf_counter()
        async for part in SessionStore().active_in_partitions(conn, range(PARTITIONS)):
            fetched = time.perf_counter()
            fetch += fetched - started
            schedule.add_loaded(
                LoadedPartition.of_packed(
                    part.partition, part.ids, part.lengths, part.logged_in_at, part.due_order, now
                )
            )
            started = time.perf_counter()
            build += started - fetched
    return schedule, fetch, build


class _EntryEach:
    """The schedule of bd7d41c, as much of it as a load and a drain use."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, str]] = []
        self.index: dict[str, tuple[float, int, int, object]] = {}
        self.seq = 0

    def add_many(
        self, ids: Sequence[str], logins: Sequence[float], partition: int, now: float
    ) -> None:
        first = self.seq + 1
        self.seq += len(ids)
        entries = [
            (max(t + INITIAL_DELAY, now), token, sid)
            for token, (sid, t) in enumerate(zip(ids, logins, strict=True), first)
        ]
        self.index.update(
            (sid, (t, partition, token, None))
            for token, (sid, t) in enumerate(zip(ids, logins, strict=True), first)
        )
        self.heap.extend(entries)
        heapq.heapify(self.heap)

    def pop_due(self, now: float, limit: int) -> list[_Due]:
        out: list[_Due] = []
        heap, index = self.heap, self.index
        while heap and len(out) < limit and heap[0][0] <= now:
            due_at, token, sid = heapq.heappop(heap)
            meta = index.get(sid)
            if meta is None or meta[2] != token:
                continue
            logged_in_at, partition, _, memo = meta
            out.append(_Due(sid, partition, due_at, memo))
            nxt = next_due_after(logged_in_at, INITIAL_DELAY, INTERVAL, now)
            heapq.heappush(heap, (nxt, token, sid))
        return out


@dataclass(frozen=True, slots=True)
class _Due:
    session_id: str
    partition: int
    due_at: float
    memo: object = None


async def _entry_each(conn: asyncpg.Connection, now: float) -> tuple[_EntryEach, float, float]:
    schedule = _EntryEach()
    fetch = build = 0.0
    async with conn.transaction(readonly=True):
        started = time.perf_counter()
        async for r in conn.cursor(VALUE_ARRAYS, list(range(PARTITIONS)), prefetch=1):
            fetched = time.perf_counter()
            fetch += fetched - started
            schedule.add_many(r["ids"], r["logged_in_at"], r["kafka_partition"], now)
            started = time.perf_counter()
            build += started - fetched
    return schedule, fetch, build


async def _step(conn: asyncpg.Connection, packed: bool, sessions: int) -> Step:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        now = time.time()
        schedule, _, _ = await (_packed(conn, now) if packed else _entry_each(conn, now))
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Timed again without tracing (tracemalloc slows allocation), with the collector's
    # defaults and then as the daemon sets it (daemon/runtime/collector.py).
    del schedule
    default_gc = gc.get_threshold()
    _, _, _, drain_default = await _load_and_drain(conn, packed, sessions)
    try:
        tune_collector()
        fetch, build, _, drain = await _load_and_drain(conn, packed, sessions)
    finally:
        gc.set_threshold(*default_gc)
    return Step(fetch, build, retained, drain, drain_default)


async def _load_and_drain(
    conn: asyncpg.Connection, packed: bool, sessions: int
) -> tuple[float, float, int, float]:
    gc.collect()
    now = time.time()
    schedule, fetch, build = await (_packed(conn, now) if packed else _entry_each(conn, now))
    started = time.perf_counter()
    popped = 0
    horizon = now + INITIAL_DELAY + 1  # every session's first due has passed
    while chunk := schedule.pop_due(horizon, DRAIN_CHUNK):
        popped += len(chunk)
        if popped > sessions:
            break
    drain = time.perf_counter() - started
    if popped != sessions:
        raise SystemExit(f"drained {popped:,} sessions of {sessions:,}")
    return fetch, build, popped, drain


DESIGNS = {True: "packed arrays (ours)", False: "value arrays, an entry each (bd7d41c)"}


async def measure(admin_dsn: str, sessions: int, repeat: int) -> dict[bool, Step]:
    async with scratch_database(admin_dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await _fill(conn, sessions)
            best: dict[bool, Step] = {}
            for _ in range(repeat):
                for packed in (False, True):
                    s = await _step(conn, packed, sessions)
                    kept = best.get(packed)
                    best[packed] = (
                        s
                        if kept is None
                        else Step(
                            min(kept.fetch_s, s.fetch_s),
                            min(kept.build_s, s.build_s),
                            min(kept.retained_bytes, s.retained_bytes),
                            min(kept.drain_s, s.drain_s),
                            min(kept.drain_default_gc_s, s.drain_default_gc_s),
                        )
                    )
            return best
        finally:
            await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    run = sized_run("benchmarks.loading", __doc__, DEFAULT_SESSIONS, DEFAULT_REPEAT, argv)
    best = on_postgres(lambda dsn: measure(dsn, run.sessions, run.repeat))
    n = run.sessions
    rows = [
        f"| {DESIGNS[packed]} | {s.fetch_s:.2f} | {s.build_s:.2f} | {s.fetch_s + s.build_s:.2f} "
        f"| {s.retained_bytes / n:.0f} | {s.drain_s:.2f} | {s.drain_default_gc_s:.2f} |"
        for packed, s in sorted(best.items())
    ]
    text = table(
        f"{n:,} active sessions in {PARTITIONS} partitions, UUID ids; best of {run.repeat}",
        [
            *("design", "fetch (s)", "build (s)", "loaded (s)", "retained bytes / session"),
            *("first checks popped (s)", "popped, the collector's defaults (s)"),
        ],
        rows,
    )
    report("loading", run.command, text, write=run.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
