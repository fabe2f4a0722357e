"""A partition's sessions as loaded at a start or a rebalance: arrays, not objects.

A restart hands this instance a million sessions at once, and nearly all of them are
overdue: each is checked within the next minutes, and only then does it need what a
tracked session costs in :class:`~e911d.schedulers.schedule.CheckSchedule` (an index
entry, a heap entry, its memo). Building those for every session up front cost 5.6 s
of a 1M restart; this holds the partition instead as four arrays and a string, with
no Python object per session, and the schedule takes sessions out of it in due order
as their checks run.

- ``ids``: every session id, concatenated in code-point order (PostgreSQL's
  ``COLLATE "C"`` on UTF-8 is the same order), so a lookup is a binary search;
- ``ends``: where each id ends in ``ids``;
- ``logged_in_at``: epoch seconds, in the same order;
- ``due_order``: the positions by login time, which is due order (a loaded session is
  first due at ``max(login + initial delay, load time)``);
- ``taken``: one byte a session, set once the schedule took it (checked, removed,
  or given a memo).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any


class LoadedPartition:
    __slots__ = (
        "cursor",
        "due_order",
        "ends",
        "ids",
        "live",
        "loaded_at",
        "logged_in_at",
        "partition",
        "taken",
    )

    def __init__(
        self,
        partition: int,
        ids: str,
        ends: array[int],
        logged_in_at: array[float],
        due_order: array[int],
        loaded_at: float,
    ) -> None:
        n = len(ends)
        if len(logged_in_at) != n or len(due_order) != n or (ends[-1] if n else 0) != len(ids):
            raise ValueError(
                f"partition {partition}: {n} ids ending at {ends[-1] if n else 0} of "
                f"{len(ids)} characters, {len(logged_in_at)} login times and "
                f"{len(due_order)} positions do not line up (is the database UTF8?)"
            )
        self.partition = partition
        self.ids = ids
        self.ends = ends
        self.logged_in_at = logged_in_at
        self.due_order = due_order
        self.loaded_at = loaded_at
        self.live = n
        self.taken = bytearray(n)
        self.cursor = 0

    @classmethod
    def of_packed(
        cls,
        partition: int,
        ids: str,
        lengths: bytes,
        logged_in_at: bytes,
        due_order: bytes,
        loaded_at: float,
    ) -> LoadedPartition:
        """From the database's packed columns: big-endian int4 lengths and positions,
        big-endian float8 login times (``int4send``/``float8send``)."""
        sizes = _big_endian("i", lengths)
        ends = array("q", accumulate(sizes))
        return cls(
            partition,
            ids,
            ends,
            _big_endian("d", logged_in_at),
            _big_endian("i", due_order),
            loaded_at,
        )

    @classmethod
    def of_sequences(
        cls,
        partition: int,
        session_ids: Sequence[str],
        logged_in_at: Sequence[float],
        loaded_at: float,
    ) -> LoadedPartition:
        """From lists (tests, benchmarks, a second load of a partition): sorted here as
        the database sorts them. Duplicate ids keep the first."""
        if len(session_ids) != len(logged_in_at):
            raise ValueError("session_ids and logged_in_at differ in length")
        first: dict[str, float] = {}
        for sid, t in zip(session_ids, logged_in_at, strict=True):
            first.setdefault(sid, t)
        ordered = sorted(first)
        times = array("d", (first[s] for s in ordered))
        order = sorted(range(len(ordered)), key=lambda pos: (times[pos], pos))
        return cls(
            partition,
            "".join(ordered),
            array("q", accumulate(len(s) for s in ordered)),
            times,
            array("i", order),
            loaded_at,
        )

    def __len__(self) -> int:
        return len(self.ends)

    def id_at(self, pos: int) -> str:
        return self.ids[self.ends[pos - 1] if pos else 0 : self.ends[pos]]

    def find(self, session_id: str) -> int:
        """The position of an id not yet taken, or -1."""
        ends, ids = self.ends, self.ids
        lo, hi = 0, len(ends)
        while lo < hi:
            mid = (lo + hi) // 2
            if ids[ends[mid - 1] if mid else 0 : ends[mid]] < session_id:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(ends) and not self.taken[lo] and self.id_at(lo) == session_id:
            return lo
        return -1

    def take(self, pos: int) -> None:
        if not self.taken[pos]:
            self.taken[pos] = 1
            self.live -= 1

    def head(self) -> int:
        """The position of the earliest-due session not yet taken, or -1."""
        order, taken, cursor = self.due_order, self.taken, self.cursor
        n = len(order)
        while cursor < n and taken[order[cursor]]:
            cursor += 1
        self.cursor = cursor
        return order[cursor] if cursor < n else -1

    def first_due(self, pos: int, initial_delay: float) -> float:
        """As :func:`~e911d.schedulers.schedule.first_due_at_or_after` at load time."""
        return max(self.logged_in_at[pos] + initial_delay, self.loaded_at)

    def pending(self) -> Iterator[str]:
        """The ids not yet taken, in due order."""
        taken = self.taken
        for pos in self.due_order:
            if not taken[pos]:
                yield self.id_at(pos)


def _big_endian(code: str, data: bytes) -> array[Any]:
    values = array(code)
    values.frombytes(data)
    if sys.byteorder == "little":
        values.byteswap()
    return values
