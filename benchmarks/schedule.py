"""Per-session check scheduling: ``CheckSchedule`` against two named baselines.

Every candidate gets the same sessions (same ids, same ``logged_in_at`` spread over
the last ten minutes, fixed seed) and is measured in the same process:

* **add**: time to add N sessions (untraced pass), then, in a second pass on a fresh
  structure, the ``tracemalloc`` traced-memory delta around the same adds divided by N.
  Inputs (session-id strings, ``logged_in_at`` floats) are allocated before tracing and
  are not counted; every candidate keeps references to them.
* **drain**: time until every session has come due once, taken in chunks of
  ``DRAIN_CHUNK`` with a ``now`` far in the future.

Times are wall-clock (``perf_counter``) with the garbage collector on, as in the daemon;
the heap candidates keep the best of ``repeat`` timing passes, the APScheduler baseline
runs one.

Candidates:

``checkschedule`` (ours)
    :class:`schedulers.schedule.CheckSchedule`; also times ``drop_partitions`` of half
    the partitions.
``heapq-tuples`` (lower bound)
    a plain ``heapq`` of ``(due, session_id)`` tuples, no index, no lazy deletion.
``apscheduler-job-per-session`` (the design we avoid)
    APScheduler 3 ``BackgroundScheduler`` with its default ``MemoryJobStore``, started
    paused, one ``date`` job per session. Its "drain" is ``remove_job`` of every job in
    due order: the job-store bookkeeping the scheduler does when a date job fires,
    without the executor dispatch, so it is a lower bound for that design.
"""

from __future__ import annotations

import datetime as dt
import gc
import heapq
import random
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import apscheduler
from apscheduler.schedulers.background import BackgroundScheduler

from e911d.schedulers.schedule import CheckSchedule

INITIAL_DELAY = 600.0  # config default: initial_delay_seconds
INTERVAL = 300.0  # config default: interval_seconds
PARTITIONS = 12  # config default: topic_partitions
LOGIN_SPREAD = 600.0  # logged_in_at spread over the last ten minutes
DRAIN_CHUNK = 5_000
FAR_FUTURE = 10.0 * 365 * 86_400  # seconds past ``now`` that count as "far future"
DROPPED_PARTITIONS = set(range(0, PARTITIONS, 2))  # half of them; never mutated


@dataclass(frozen=True, slots=True)
class Sessions:
    """The benchmark input, shared by every candidate."""

    now: float
    ids: list[str]
    logged_in_at: list[float]
    partitions: list[int]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(slots=True)
class Result:
    candidate: str
    sessions: int
    add_s: float
    bytes_per_session: float
    drain_s: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def adds_per_s(self) -> float:
        return self.sessions / self.add_s if self.add_s > 0 else float("inf")

    @property
    def drains_per_s(self) -> float | None:
        if self.drain_s is None:
            return None
        return self.sessions / self.drain_s if self.drain_s > 0 else float("inf")


def make_sessions(n: int, seed: int, now: float | None = None) -> Sessions:
    """``n`` sessions with UUID-shaped ids, logged in over the last ``LOGIN_SPREAD`` s."""
    rng = random.Random(seed)
    at = time.time() if now is None else now
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]
    logged_in_at = [at - rng.uniform(0.0, LOGIN_SPREAD) for _ in range(n)]
    partitions = [rng.randrange(PARTITIONS) for _ in range(n)]
    return Sessions(at, ids, logged_in_at, partitions)


def subset(sessions: Sessions, n: int) -> Sessions:
    """The first ``n`` sessions (the same objects, nothing copied but the lists)."""
    return Sessions(
        sessions.now, sessions.ids[:n], sessions.logged_in_at[:n], sessions.partitions[:n]
    )


@contextmanager
def _stopwatch() -> Iterator[list[float]]:
    """Yields a one-element list that holds the elapsed seconds on exit."""
    gc.collect()
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def _traced_bytes(build: Callable[[], object]) -> tuple[int, object]:
    """Traced-memory delta of what ``build()`` allocates and keeps alive, and its result.

    The result is returned so that it stays alive until the caller releases it.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        kept = build()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before, kept


def _best_of(repeat: int) -> str:
    return f"times: best of {repeat} passes" if repeat > 1 else "times: one pass"


# --- candidate 1: CheckSchedule (ours) -------------------------------------------------


def _fill_check_schedule(s: Sessions) -> CheckSchedule:
    schedule = CheckSchedule(INITIAL_DELAY, INTERVAL)
    add = schedule.add
    now = s.now
    for sid, logged_in_at, partition in zip(s.ids, s.logged_in_at, s.partitions, strict=True):
        add(sid, logged_in_at, partition, now)
    return schedule


def _time_check_schedule(s: Sessions) -> tuple[float, float, float, int]:
    """One timing pass: add, drain, drop half the partitions."""
    n = len(s)
    with _stopwatch() as add_t:
        schedule = _fill_check_schedule(s)
    assert len(schedule) == n

    far = s.now + FAR_FUTURE
    popped = 0
    with _stopwatch() as drain_t:
        while chunk := schedule.pop_due(far, DRAIN_CHUNK):
            popped += len(chunk)
    assert popped == n, (popped, n)

    with _stopwatch() as drop_t:
        dropped = schedule.drop_partitions(DROPPED_PARTITIONS)
    assert len(schedule) == n - dropped
    return add_t[0], drain_t[0], drop_t[0], dropped


def bench_check_schedule(s: Sessions, repeat: int = 1) -> Result:
    n = len(s)
    passes = [_time_check_schedule(s) for _ in range(repeat)]
    dropped = passes[0][3]
    traced, kept = _traced_bytes(lambda: _fill_check_schedule(s))
    del kept

    return Result(
        candidate="checkschedule (ours)",
        sessions=n,
        add_s=min(p[0] for p in passes),
        bytes_per_session=traced / n,
        drain_s=min(p[1] for p in passes),
        notes=[
            _best_of(repeat),
            f"drop_partitions({len(DROPPED_PARTITIONS)}/{PARTITIONS} partitions, "
            f"{dropped:,} sessions): {min(p[2] for p in passes):.3f} s",
        ],
    )


# --- candidate 2: plain heapq of (due, sid) tuples (lower bound) -----------------------


def _fill_heapq(s: Sessions) -> list[tuple[float, str]]:
    heap: list[tuple[float, str]] = []
    push = heapq.heappush
    for sid, logged_in_at in zip(s.ids, s.logged_in_at, strict=True):
        push(heap, (logged_in_at + INITIAL_DELAY, sid))
    return heap


def _time_heapq(s: Sessions) -> tuple[float, float]:
    """One timing pass: add, then drain doing CheckSchedule.pop_due's work minus the index.

    Each popped session is pushed back with its next due time after ``now``.
    """
    n = len(s)
    with _stopwatch() as add_t:
        heap = _fill_heapq(s)
    assert len(heap) == n

    far = s.now + FAR_FUTURE
    popped = 0
    pop, push = heapq.heappop, heapq.heappush
    with _stopwatch() as drain_t:
        while heap and heap[0][0] <= far:
            taken = 0
            while heap and taken < DRAIN_CHUNK and heap[0][0] <= far:
                due, sid = pop(heap)
                push(heap, (due + ((far - due) // INTERVAL + 1) * INTERVAL, sid))
                taken += 1
            popped += taken
    assert popped == n, (popped, n)
    return add_t[0], drain_t[0]


def bench_heapq_tuples(s: Sessions, repeat: int = 1) -> Result:
    n = len(s)
    passes = [_time_heapq(s) for _ in range(repeat)]
    traced, kept = _traced_bytes(lambda: _fill_heapq(s))
    del kept

    return Result(
        candidate="heapq-tuples (lower bound)",
        sessions=n,
        add_s=min(p[0] for p in passes),
        bytes_per_session=traced / n,
        drain_s=min(p[1] for p in passes),
        notes=[_best_of(repeat), "no index: cannot remove a session or drop partitions"],
    )


# --- candidate 3: one APScheduler job per session --------------------------------------


def check_session(session_id: str, partition: int) -> None:
    """The job function; never runs (the scheduler stays paused)."""


def _paused_scheduler() -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.start(paused=True)
    return scheduler


def _fill_apscheduler(scheduler: BackgroundScheduler, s: Sessions) -> None:
    add_job = scheduler.add_job
    utc = dt.UTC
    from_ts = dt.datetime.fromtimestamp
    for sid, logged_in_at, partition in zip(s.ids, s.logged_in_at, s.partitions, strict=True):
        add_job(
            check_session,
            "date",
            run_date=from_ts(logged_in_at + INITIAL_DELAY, utc),
            args=(sid, partition),
            id=sid,
        )


def bench_apscheduler(s: Sessions, *, reduced_from: int | None = None) -> Result:
    n = len(s)
    scheduler = _paused_scheduler()
    try:
        with _stopwatch() as add_t:
            _fill_apscheduler(scheduler, s)
        jobs = scheduler.get_jobs()
        assert len(jobs) == n
        in_due_order = [job.id for job in jobs]
        del jobs

        remove_job = scheduler.remove_job
        with _stopwatch() as drain_t:
            for sid in in_due_order:
                remove_job(sid)
        assert not scheduler.get_jobs()
        del in_due_order
    finally:
        scheduler.shutdown(wait=False)

    traced_scheduler = _paused_scheduler()
    try:
        traced, _ = _traced_bytes(partial(_fill_apscheduler, traced_scheduler, s))
    finally:
        traced_scheduler.shutdown(wait=False)

    notes = [
        _best_of(1),
        f"APScheduler {apscheduler.__version__} BackgroundScheduler + MemoryJobStore, "
        "paused, one date job per session",
        "drain = remove_job of each job in due order (what a fired date job costs the "
        "job store, executor dispatch excluded)",
    ]
    if reduced_from is not None and reduced_from != n:
        notes.append(
            f"{n:,} sessions, not {reduced_from:,} like the heaps: each add inserts into "
            "a sorted list (O(N) shift), so the full size would not fit the run's time budget"
        )
    return Result(
        candidate="apscheduler-job-per-session (baseline)",
        sessions=n,
        add_s=add_t[0],
        bytes_per_session=traced / n,
        drain_s=drain_t[0],
        notes=notes,
    )


def run(sessions: int, apscheduler_sessions: int, seed: int, repeat: int = 1) -> list[Result]:
    """Run every candidate on the same input; print progress as each one finishes.

    The heap candidates take the best of ``repeat`` timing passes; the APScheduler
    baseline runs one pass (it is by far the slowest).
    """
    data = make_sessions(max(sessions, apscheduler_sessions), seed)
    results: list[Result] = []
    steps: list[tuple[str, Callable[[], Result]]] = [
        ("checkschedule", lambda: bench_check_schedule(subset(data, sessions), repeat)),
        ("heapq-tuples", lambda: bench_heapq_tuples(subset(data, sessions), repeat)),
        (
            "apscheduler-job-per-session",
            lambda: bench_apscheduler(subset(data, apscheduler_sessions), reduced_from=sessions),
        ),
    ]
    for name, step in steps:
        started = time.perf_counter()
        results.append(step())
        print(f"  {name}: done in {time.perf_counter() - started:.1f} s", flush=True)
    return results
