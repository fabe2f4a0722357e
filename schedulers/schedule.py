"""When each owned session is next due, for up to millions of sessions.

One APScheduler job per session costs ~625 bytes and a sorted-list shift per add
(200,000 jobs take ~10 s to add); this heap plus its index costs ~225 bytes a session,
adds 10^6 sessions in about a second and drains ~150,000 a second (measured:
benchmarks/README.md).
Entries are never removed in place: a session that ends or moves to another instance
is dropped from the index and its heap entries are skipped when they surface.

A partition loaded at a start or a rebalance is held as arrays
(:class:`~e911d.schedulers.loaded.LoadedPartition`) until its sessions' first checks
take them out one by one: a restart does not build a million index and heap entries
before it is ready.

Each index entry also carries one opaque *memo*: the owner keeps there what it holds
to decide the session's checks in memory (daemon/core/memo.py: its inputs and last
decision). It goes away with the session, and the schedule never looks inside it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import NamedTuple

from e911d.schedulers.loaded import LoadedPartition


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


class Due(NamedTuple):
    """A session whose check is due (a tuple: a burst makes a million of them)."""

    session_id: str
    partition: int
    due_at: float
    memo: object = None


class CheckSchedule:
    """Heap of ``(due_at, seq, session_id)`` plus an index of the live sessions, and
    the loaded partitions whose sessions have not been checked yet."""

    __slots__ = ("_heap", "_index", "_loaded", "_pending", "_seq", "initial_delay", "interval")

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
        # partition -> its sessions as loaded, until each is taken into the index.
        self._loaded: dict[int, LoadedPartition] = {}
        self._pending = 0

    def __len__(self) -> int:
        return len(self._index) + self._pending

    def __contains__(self, session_id: object) -> bool:
        if session_id in self._index:
            return True
        return isinstance(session_id, str) and self._find_loaded(session_id) is not None

    def _find_loaded(
        self, session_id: str, partition: int | None = None, *, only: bool = False
    ) -> tuple[LoadedPartition, int] | None:
        """Where a loaded session is: in ``partition`` first (its key puts a session
        in one partition), then, unless ``only``, in the others."""
        if not self._loaded:
            return None
        hinted = self._loaded.get(partition) if partition is not None else None
        if hinted is not None:
            pos = hinted.find(session_id)
            if pos >= 0:
                return hinted, pos
            if only:
                return None
        elif only:
            return None
        for part in self._loaded.values():
            if part is not hinted:
                pos = part.find(session_id)
                if pos >= 0:
                    return part, pos
        return None

    def _take_loaded(self, part: LoadedPartition, pos: int) -> None:
        part.take(pos)
        self._pending -= 1
        if not part.live:
            del self._loaded[part.partition]

    def add(self, session_id: str, logged_in_at: float, partition: int, now: float) -> None:
        """Track a session; a session already tracked keeps its schedule."""
        if session_id in self._index or self._find_loaded(session_id, partition, only=True):
            return
        self._seq += 1
        self._index[session_id] = (logged_in_at, partition, self._seq, None)
        due = first_due_at_or_after(logged_in_at, self.initial_delay, self.interval, now)
        heapq.heappush(self._heap, (due, self._seq, session_id))

    def add_many(
        self, session_ids: Sequence[str], logged_in_at: Sequence[float], partition: int, now: float
    ) -> int:
        """Track a partition's sessions in one go (see :meth:`add_loaded`). Sessions
        already tracked keep their schedule. Returns how many were added."""
        if not session_ids:
            return 0
        part = LoadedPartition.of_sequences(partition, session_ids, logged_in_at, now)
        return self.add_loaded(part)

    def add_loaded(self, part: LoadedPartition) -> int:
        """Track a loaded partition's sessions as they are, arrays and all; each is
        first due at ``max(login + initial delay, part.loaded_at)``. Sessions already
        tracked keep their schedule. Returns how many were added."""
        if part.partition in self._loaded:
            # A second load of a partition not dropped in between: rare, one by one.
            added = 0
            for pos in part.due_order:
                sid = part.id_at(pos)
                if sid not in self:
                    self.add(sid, part.logged_in_at[pos], part.partition, part.loaded_at)
                    added += 1
            return added
        if self._index:
            index = self._index
            for pos in range(len(part)):
                if part.id_at(pos) in index:
                    part.take(pos)
        if part.live:
            self._loaded[part.partition] = part
            self._pending += part.live
        return part.live

    def remove(self, session_id: str, partition: int | None = None) -> None:
        """Stop tracking a session (``partition``, when known, is searched first among
        the loaded ones)."""
        if self._index.pop(session_id, None) is None:
            found = self._find_loaded(session_id, partition)
            if found is not None:
                self._take_loaded(*found)

    def memo(self, session_id: str) -> object:
        meta = self._index.get(session_id)
        return None if meta is None else meta[3]

    def set_memo(self, session_id: str, memo: object) -> None:
        """Replace a tracked session's memo; an untracked session stays untracked. A
        loaded session given a memo joins the index at its first due time."""
        meta = self._index.get(session_id)
        if meta is None and memo is not None:
            found = self._find_loaded(session_id)
            if found is not None:
                part, pos = found
                self._take_loaded(part, pos)
                meta = self._track(session_id, part, pos)
        if meta is not None and meta[3] is not memo:
            self._index[session_id] = (meta[0], meta[1], meta[2], memo)

    def _track(
        self, session_id: str, part: LoadedPartition, pos: int
    ) -> tuple[float, int, int, object]:
        self._seq += 1
        meta = (part.logged_in_at[pos], part.partition, self._seq, None)
        self._index[session_id] = meta
        heapq.heappush(self._heap, (part.first_due(pos, self.initial_delay), self._seq, session_id))
        return meta

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
        dropped = 0
        for p in partitions & self._loaded.keys():
            part = self._loaded.pop(p)
            dropped += part.live
            self._pending -= part.live
        gone = [sid for sid, meta in self._index.items() if meta[1] in partitions]
        for sid in gone:
            del self._index[sid]
        if len(self._heap) > 4 * max(len(self._index), 1024):
            self._compact()
        return dropped + len(gone)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._live(e)]
        heapq.heapify(self._heap)

    def _live(self, entry: tuple[float, int, str]) -> bool:
        meta = self._index.get(entry[2])
        return meta is not None and meta[2] == entry[1]

    def _heap_due(self) -> float:
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else math.inf

    def _loaded_heads(self) -> tuple[LoadedPartition | None, float]:
        """The loaded partition due first, and its due time."""
        best: LoadedPartition | None = None
        best_due = math.inf
        for part in self._loaded.values():
            pos = part.head()
            if pos < 0:
                continue
            due = part.first_due(pos, self.initial_delay)
            if due < best_due:
                best, best_due = part, due
        return best, best_due

    def next_due(self) -> float | None:
        due = min(self._heap_due(), self._loaded_heads()[1])
        return None if due == math.inf else due

    def pop_due(self, now: float, limit: int) -> list[Due]:
        """Take up to ``limit`` sessions due at or before ``now`` and reschedule them.

        The next due time is computed from the anchor, so a late tick never shifts the
        cadence and missed ticks are not replayed. Heap entries and loaded sessions
        are merged earliest first, but a loaded partition, once it has the earliest
        session, gives every session of it due by then (or by the heap's next) in one
        run: the loaded partitions' recent logins interleave, and a run of one session
        each cost more than the checks. Every session popped is due; none waits for
        longer than the backlog takes to drain.
        """
        out: list[Due] = []
        while len(out) < limit and self._loaded:
            part, part_due = self._loaded_heads()
            heap_due = self._heap_due()
            if part is not None and part_due <= now and part_due <= heap_due:
                self._pop_loaded(part, min(now, heap_due), now, limit - len(out), out)
            elif heap_due <= now:
                self._pop_heap(min(now, part_due), now, limit - len(out), out)
            else:
                return out
        if len(out) < limit:
            self._pop_heap(now, now, limit - len(out), out)
        return out

    def _pop_heap(self, bound: float, now: float, limit: int, out: list[Due]) -> None:
        heap, index, delay, interval = self._heap, self._index, self.initial_delay, self.interval
        floor, new = math.floor, tuple.__new__  # a Due without NamedTuple's Python __new__
        taken = 0
        while heap and taken < limit and heap[0][0] <= bound:
            due_at, token, sid = heapq.heappop(heap)
            meta = index.get(sid)
            if meta is None or meta[2] != token:
                continue
            logged_in_at, partition, _, memo = meta
            out.append(new(Due, (sid, partition, due_at, memo)))
            taken += 1
            first = logged_in_at + delay  # next_due_after, inlined: once a check
            if now < first:
                nxt = first
            else:
                nxt = first + (floor((now - first) / interval) + 1) * interval
                if nxt <= now:
                    nxt = next_due_after(logged_in_at, delay, interval, now)
            heapq.heappush(heap, (nxt, token, sid))

    def _pop_loaded(
        self, part: LoadedPartition, bound: float, now: float, limit: int, out: list[Due]
    ) -> None:
        """A run of a loaded partition's sessions due by ``bound``: each joins the index
        and the heap at its next due time, as a popped session does. (The loop is
        :meth:`LoadedPartition.head`, ``first_due`` and ``take`` inlined: it runs once
        for every session of a restart.)"""
        delay, interval, loaded_at, partition = (
            self.initial_delay,
            self.interval,
            part.loaded_at,
            part.partition,
        )
        order, taken, logins, ends, ids = (
            part.due_order,
            part.taken,
            part.logged_in_at,
            part.ends,
            part.ids,
        )
        index, seq, n, cursor = self._index, self._seq, len(order), part.cursor
        floor, new = math.floor, tuple.__new__  # a Due without NamedTuple's Python __new__
        entries: list[tuple[float, int, str]] = []
        while len(entries) < limit and cursor < n:
            pos = order[cursor]
            if taken[pos]:
                cursor += 1
                continue
            t = logins[pos]
            due = t + delay
            if due < loaded_at:
                due = loaded_at
            if due > bound:
                break
            taken[pos] = 1
            cursor += 1
            sid = ids[ends[pos - 1] if pos else 0 : ends[pos]]
            seq += 1
            index[sid] = (t, partition, seq, None)
            first = t + delay
            if now < first:
                nxt = first
            else:
                nxt = first + (floor((now - first) / interval) + 1) * interval
                if nxt <= now:
                    nxt = next_due_after(t, delay, interval, now)
            entries.append((nxt, seq, sid))
            out.append(new(Due, (sid, partition, due, None)))
        part.cursor, self._seq = cursor, seq
        part.live -= len(entries)
        self._pending -= len(entries)
        if not part.live:
            del self._loaded[partition]
        heap = self._heap
        if len(entries) * 8 >= len(heap):  # a restart's run: one heapify, not a push each
            heap.extend(entries)
            heapq.heapify(heap)
        else:
            for entry in entries:
                heapq.heappush(heap, entry)

    def sessions_of(self, partitions: set[int]) -> list[str]:
        out = [sid for sid, meta in self._index.items() if meta[1] in partitions]
        for p in sorted(partitions & self._loaded.keys()):
            out.extend(self._loaded[p].pending())
        return out
