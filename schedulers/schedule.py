"""When each owned session is next due, for up to millions of sessions.

One APScheduler job per session costs ~625 bytes and a sorted-list shift per add
(200,000 jobs take ~10 s to add); this heap plus its index costs ~225 bytes a session,
adds 10^6 sessions in about a second and drains ~150,000 a second (measured:
benchmarks/README.md).
Entries are never removed in place: a session that ends or moves to another instance
is dropped from the index and its heap entries are skipped when they surface.

Each index entry also carries one opaque *memo*: the owner keeps there what it holds
to decide the session's checks in memory (daemon/core/memo.py: its inputs and last
decision). It goes away with the session, and the schedule never looks inside it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass


def schedule_anchor(logged_in_at: float, initial_delay: float) -> float:
    """The first due time: ``T + initial_delay``."""
    return logged_in_at + initial_delay


def next_due_after(logged_in_at: float, initial_delay: float, interval: float, now: float) -> float:
    """The first ``T + initial_delay + k*interval`` (k ≥ 0) strictly after ``now``.

    Used after a check ran, so that a session whose checks were missed (the daemon
    was down) runs once now and then resumes its cadence, never a burst.
    """
    first = schedule_anchor(logged_in_at, initial_delay)
    if now < first:
        return first
    k = math.floor((now - first) / interval) + 1
    due = first + k * interval
    while due <= now:  # float rounding
        k += 1
        due = first + k * interval
    return due


def first_due_at_or_after(
    logged_in_at: float, initial_delay: float, interval: float, now: float
) -> float:
    """The earliest due time not yet passed, or ``now`` when checks are overdue.

    A session loaded after a restart gets its overdue check at once (once).
    """
    first = schedule_anchor(logged_in_at, initial_delay)
    return first if now <= first else now


@dataclass(frozen=True, slots=True)
class Due:
    session_id: str
    partition: int
    due_at: float
    memo: object = None


class CheckSchedule:
    """Heap of ``(due_at, seq, session_id)`` plus an index of the live sessions."""

    __slots__ = ("_heap", "_index", "_seq", "initial_delay", "interval")

    def __init__(self, initial_delay: float, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.initial_delay = initial_delay
        self.interval = interval
        self._heap: list[tuple[float, int, str]] = []
        # session_id -> (logged_in_at, partition, token, memo); the token makes old
        # heap entries of a session that was removed and added again stale.
        self._index: dict[str, tuple[float, int, int, object]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._index

    def add(self, session_id: str, logged_in_at: float, partition: int, now: float) -> None:
        """Track a session; a session already tracked keeps its schedule."""
        if session_id in self._index:
            return
        self._seq += 1
        self._index[session_id] = (logged_in_at, partition, self._seq, None)
        due = first_due_at_or_after(logged_in_at, self.initial_delay, self.interval, now)
        heapq.heappush(self._heap, (due, self._seq, session_id))

    def add_many(
        self, session_ids: Sequence[str], logged_in_at: Sequence[float], partition: int, now: float
    ) -> int:
        """Track a partition's sessions in one go (a restart loads a million): the heap
        is rebuilt with one ``heapify`` instead of a push per session. Sessions already
        tracked keep their schedule. Returns how many were added."""
        index = self._index
        pairs = zip(session_ids, logged_in_at, strict=True)
        fresh = [(s, t) for s, t in pairs if s not in index] if index else list(pairs)
        if not fresh:
            return 0
        first_token = self._seq + 1
        self._seq += len(fresh)
        delay = self.initial_delay
        entries = [
            (max(t + delay, now), token, sid) for token, (sid, t) in enumerate(fresh, first_token)
        ]
        index.update(
            (sid, (t, partition, token, None)) for token, (sid, t) in enumerate(fresh, first_token)
        )
        heap = self._heap
        if len(entries) * 8 >= len(heap):
            heap.extend(entries)
            heapq.heapify(heap)
        else:
            for entry in entries:
                heapq.heappush(heap, entry)
        return len(entries)

    def remove(self, session_id: str) -> None:
        self._index.pop(session_id, None)

    def memo(self, session_id: str) -> object:
        meta = self._index.get(session_id)
        return None if meta is None else meta[3]

    def set_memo(self, session_id: str, memo: object) -> None:
        """Replace a tracked session's memo; an untracked session stays untracked."""
        meta = self._index.get(session_id)
        if meta is not None and meta[3] is not memo:
            self._index[session_id] = (meta[0], meta[1], meta[2], memo)

    def clear_memos(self, partitions: set[int] | None = None) -> int:
        """Forget the memos of these partitions' sessions (all of them for None)."""
        if partitions is not None and not partitions:
            return 0
        index = self._index
        cleared = 0
        for sid, meta in index.items():
            if meta[3] is not None and (partitions is None or meta[1] in partitions):
                index[sid] = (meta[0], meta[1], meta[2], None)
                cleared += 1
        return cleared

    def drop_partitions(self, partitions: set[int]) -> int:
        """Forget the sessions of partitions this instance no longer owns."""
        gone = self.sessions_of(partitions)
        for sid in gone:
            del self._index[sid]
        if len(self._heap) > 4 * max(len(self._index), 1024):
            self._compact()
        return len(gone)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._live(e)]
        heapq.heapify(self._heap)

    def _live(self, entry: tuple[float, int, str]) -> bool:
        meta = self._index.get(entry[2])
        return meta is not None and meta[2] == entry[1]

    def next_due(self) -> float | None:
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, limit: int) -> list[Due]:
        """Take up to ``limit`` sessions due at or before ``now`` and reschedule them.

        The next due time is computed from the anchor, so a late tick never shifts the
        cadence and missed ticks are not replayed.
        """
        out: list[Due] = []
        heap = self._heap
        index = self._index
        while heap and len(out) < limit and heap[0][0] <= now:
            due_at, token, sid = heapq.heappop(heap)
            meta = index.get(sid)
            if meta is None or meta[2] != token:
                continue
            logged_in_at, partition, _, memo = meta
            out.append(Due(sid, partition, due_at, memo))
            nxt = next_due_after(logged_in_at, self.initial_delay, self.interval, now)
            heapq.heappush(heap, (nxt, token, sid))
        return out

    def sessions_of(self, partitions: set[int]) -> list[str]:
        return [sid for sid, meta in self._index.items() if meta[1] in partitions]
