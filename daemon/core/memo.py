"""Deciding a check from memory when nothing it reads changed since the last decision.

Almost every check concludes "still matches" (or "the same mismatch, already
alerted"). The database path locks the session and joins five tables to say so. A
check may instead conclude *nothing to do* from memory when it can prove that its
inputs are the ones of its last database decision:

- the account's directory (locations, IP groups) and its users and toggle: the two
  per-account versions the triggers bump on every change (``directory_versions``,
  ``user_versions``), read with the check's rows and re-read by :class:`MemoBook`
  once per tick for all accounts, and marked unknown by a NOTIFY until that re-read;
- the session's own row (its IP) and its open alert: only this instance changes them
  while it owns the partition (ingest, dismissals, the database path), and each of
  those forgets the session's memo; a handover forgets the partition's memos.

Memory never writes and never raises or resolves anything: the database path stays
the only one that does, as before. Only a decision that changed nothing and does not
depend on the clock (a snoozed mismatch does) is remembered, so a remembered decision
re-made on the same inputs is again "nothing to do". Whatever is uncertain (no memo,
a version not yet re-read, a notice since) goes to the database: a lost notice may
delay a decision by a tick, never make it wrong.

Per session the memo costs one pointer in the schedule's index: :class:`Memo`
values are shared by every session with the same account, versions and outcome.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from e911d.daemon.core.evaluation import AlertDecision
from e911d.daemon.core.model import Outcome, Verdict

# (directory version, user version) of one account; (0, 0) before its first change.
Versions = tuple[int, int]
NEVER_CHANGED: Versions = (0, 0)


@dataclass(frozen=True, slots=True)
class Memo:
    """What the last database decision of a session read and concluded."""

    account_id: str
    versions: Versions
    outcome: Outcome


def memo_after(
    account_id: str, versions: Versions, verdict: Verdict, decision: AlertDecision
) -> Memo | None:
    """The memo a database decision leaves, or None when it must not be remembered.

    A transition is not remembered (the next check confirms it from the database
    first), nor is a snoozed mismatch: the same inputs raise once the snooze is over.
    """
    if not decision.changes_nothing or decision.snoozed:
        return None
    return Memo(account_id, versions, verdict.outcome)


def remembered(memo: object, current: Versions | None) -> Outcome | None:
    """The outcome memory may conclude (with no transition), or None: ask the database."""
    if not isinstance(memo, Memo) or current is None or memo.versions != current:
        return None
    return memo.outcome


class MemoSlots(Protocol):
    """Where each session's memo is kept: beside its due time in the schedule
    (``schedulers.CheckSchedule``), so a tick reads both in one lookup."""

    def set_memo(self, session_id: str, memo: object) -> None: ...

    def clear_memos(self, partitions: set[int] | None = None) -> int: ...


class MemoBook:
    """The versions memory compares with, and the guards that keep memos honest.

    ``gen`` counts the events that make memos stale (notices, session changes,
    handovers). A database check records its memos only if nothing made its session
    stale after it started (:meth:`begin`): a check that read a row just before
    ingest changed it must not leave a memo behind ingest's back.
    """

    def __init__(self, schedule: MemoSlots, enabled: bool = True) -> None:
        self.enabled = enabled
        self._schedule = schedule
        self._gen = 0
        self._versions: dict[str, Versions] = {}
        self._read = False  # no re-read since start-up or an "everything changed"
        self._all_stale_at = 0
        self._stale: dict[str, int] = {}  # account -> gen of its last notice
        self._recent: dict[str, int] = {}  # session -> gen it was last made stale
        self._barrier = 0  # database checks started before it record nothing
        self._starts: Counter[int] = Counter()
        self._interned: dict[Memo, Memo] = {}

    def current(self, account_id: str) -> Versions | None:
        if not self._read or account_id in self._stale:
            return None
        return self._versions.get(account_id, NEVER_CHANGED)

    def decide(self, memo: object) -> Outcome | None:
        """What memory concludes for a session whose memo is ``memo`` (None: don't know)."""
        if not self.enabled or not isinstance(memo, Memo):
            return None
        return remembered(memo, self.current(memo.account_id))

    # -- the backstop -----------------------------------------------------------

    def refresh_begin(self) -> int:
        """Call just before reading every account's versions; pass the result on."""
        return self._gen

    def refresh_end(self, started: int, rows: Iterable[tuple[str, int, int]]) -> None:
        """The versions read by a query that started after ``started`` was taken.

        Notices heard before then are covered by the read; later ones stay stale.
        """
        self._versions = {a: (d, u) for a, d, u in rows}
        self._stale = {a: g for a, g in self._stale.items() if g > started}
        if self._all_stale_at <= started:
            self._read = True
        current = self._versions
        self._interned = {
            m: m for m in self._interned if current.get(m.account_id, NEVER_CHANGED) == m.versions
        }

    # -- what makes memos stale -------------------------------------------------

    def account_changed(self, account_id: str | None) -> None:
        """A directory notice for an account (None: everything)."""
        self._gen += 1
        if account_id is None:
            self._read = False
            self._all_stale_at = self._gen
        else:
            self._stale[account_id] = self._gen

    def sessions_changed(self, session_ids: Iterable[str]) -> None:
        """Ingest changed these sessions' rows or alerts (an IP, a dismissal)."""
        self._gen += 1
        # Only a database check in flight can leave a memo behind: with none, there
        # is nothing to remember (and nothing would prune it).
        recent = self._recent if self._starts else None
        for sid in session_ids:
            if recent is not None:
                recent[sid] = self._gen
            self._schedule.set_memo(sid, None)

    def handover(self, partitions: set[int]) -> None:
        """Partitions came or went: another instance may have decided meanwhile.

        Database checks already started record nothing; the memos of ``partitions``
        go (revoked partitions' sessions left the schedule with theirs)."""
        self._gen += 1
        self._barrier = self._gen
        self._schedule.clear_memos(partitions)

    # -- the database path ------------------------------------------------------

    def begin(self) -> int:
        """Call before a database check takes its locks; pass the result to :meth:`end`."""
        self._starts[self._gen] += 1
        return self._gen

    def end(self, started: int, memos: Mapping[str, Memo | None]) -> None:
        """Record what a committed database check concluded (also call it on failure,
        with no memos)."""
        for sid, memo in memos.items():
            allowed = (
                memo is not None
                and self.enabled
                and started >= self._barrier
                and self._recent.get(sid, -1) <= started
            )
            self._schedule.set_memo(sid, self._intern(memo) if allowed and memo else None)
        self._starts[started] -= 1
        if self._starts[started] <= 0:
            del self._starts[started]
        if not self._starts:
            self._recent.clear()
        else:
            oldest = min(self._starts)
            self._recent = {s: g for s, g in self._recent.items() if g > oldest}

    def _intern(self, memo: Memo) -> Memo:
        return self._interned.setdefault(memo, memo)
