"""Deciding checks in memory, first checks included, and the guards that keep it honest.

Almost every check concludes "nothing to do" (a match, or the same mismatch already
alerted). For the sessions of the partitions it owns, an instance holds every input
of that decision (:mod:`e911d.daemon.core.decision_inputs`) and decides with the same
code as the database path. Only a decision that changes something, or one memory is
not sure of, goes to the database path, which re-decides under the session's lock and
is the only writer: a stale memory may send a session there for nothing or delay a
decision, never write a wrong alert.

What memory holds, and what makes it stale:

- each session's row and open alert (in the schedule's per-session slot): read in one
  query for the sessions that have none (a first check, after a change), and dropped
  whenever something may have changed them: ingest (a new IP, a dismissal), a database
  check of the session (it may have raised or resolved), a handover;
- each account's toggle, directory and users, read in one snapshot with the account's
  two input versions (``directory_versions``, ``user_versions``). A directory or
  account notice drops the account; a user notice makes only that user's sessions
  uncertain until the account's users are read again (at the next tick); the versions
  re-read once per tick are the backstop for a lost notice: an account whose versions
  moved is read again before any of its sessions is decided.

The generation ``gen`` counts the events that make memory stale. A read records its
rows only if nothing made them stale after it started: a read that saw a row just
before ingest or a database check changed it must not leave it behind their back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from e911d.daemon.core.decision_inputs import (
    NEVER_CHANGED,
    AccountInputs,
    SessionInputs,
    Shared,
    Versions,
    decide_from,
)
from e911d.daemon.core.evaluation import AlertDecision
from e911d.daemon.core.geo import GeoCheck
from e911d.daemon.core.model import Outcome, Verdict
from e911d.daemon.core.unlocated import is_unlocated

__all__ = ["NEVER_CHANGED", "Memo", "MemoBook", "MemoSlots", "Versions", "memo_after"]


@dataclass(frozen=True, slots=True)
class Memo:
    """What a database decision read and concluded (``CheckReport.memos``): a record
    for the caller; memory no longer decides from it (it holds the inputs instead)."""

    account_id: str
    versions: Versions
    outcome: Outcome


def memo_after(
    account_id: str, versions: Versions, verdict: Verdict, decision: AlertDecision
) -> Memo | None:
    """The memo a database decision leaves, or None for a transition or a snooze."""
    if not decision.changes_nothing or decision.snoozed:
        return None
    return Memo(account_id, versions, verdict.outcome)


class MemoSlots(Protocol):
    """Where each session's inputs are kept: beside its due time in the schedule
    (``schedulers.CheckSchedule``), so they go away with the session."""

    def memo(self, session_id: str) -> object: ...

    def set_memo(self, session_id: str, memo: object) -> None: ...

    def clear_memos(self, partitions: set[int] | None = None) -> int: ...


class MemoBook:
    def __init__(self, schedule: MemoSlots, enabled: bool = True) -> None:
        self.enabled = enabled
        self.shared = Shared()
        self._schedule = schedule
        self._gen = 0
        self._accounts: dict[str, AccountInputs] = {}
        self._versions: dict[str, Versions] = {}
        self._account_gen: dict[str, int] = {}  # account -> gen of its last notice
        self._account_wide: dict[str, int] = {}  # ... of its last account-wide notice
        self._user_gen: dict[tuple[str, str], int] = {}  # (account, user) -> gen
        self._all_gen = 0  # gen of the last "everything changed"
        self._recent: dict[str, int] = {}  # session -> gen it was last made stale
        self._barrier = 0  # reads started before it record nothing
        self._starts: Counter[int] = Counter()
        # Partitions assigned whose sessions' inputs are not read yet (one query each).
        self.unread: set[int] = set()

    # -- deciding -----------------------------------------------------------------

    def inputs(self, session_id: str) -> SessionInputs | None:
        memo = self._schedule.memo(session_id)
        return memo if isinstance(memo, SessionInputs) else None

    def account(self, account_id: str) -> AccountInputs | None:
        return self._accounts.get(account_id)

    def decide(
        self, session_id: str, geo: GeoCheck | None = None, now: float | None = None
    ) -> SessionInputs | None:
        """The session's inputs, with the outcome and whether it is unlocated, when
        memory concludes "nothing to do"; None: ask the database."""
        if not self.enabled:
            return None
        session = self.inputs(session_id)
        if session is None:
            return None
        account = self._accounts.get(session.account_id)
        if account is None:
            return None
        if self._user_gen.get((session.account_id, session.user_id), -1) > account.loaded_at:
            return None
        user = account.users.get(session.user_id)
        if user is not None and user.confirmed_until <= (time.time() if now is None else now):
            return None
        if session.decided_on is account:
            return session
        verdict, decision = decide_from(account, session, geo)
        if not decision.changes_nothing:
            return None
        session.decided_on = account
        session.outcome = verdict.outcome
        session.unlocated = is_unlocated(verdict)
        return session

    def missing(self, session_ids: Iterable[str]) -> tuple[list[str], set[str]]:
        """The sessions whose inputs are not held, and the accounts to read (those of
        the held sessions that are not held or whose users changed since read)."""
        sessions: list[str] = []
        accounts: set[str] = set()
        for sid in session_ids:
            s = self.inputs(sid)
            if s is None:
                sessions.append(sid)
            elif self.account_due(s.account_id):
                accounts.add(s.account_id)
        return sessions, accounts

    def account_due(self, account_id: str) -> bool:
        held = self._accounts.get(account_id)
        return held is None or held.loaded_at < self._account_gen.get(account_id, -1)

    # -- reads ----------------------------------------------------------------------

    def begin(self) -> int:
        """Call before a read (or a database check) starts; pass the result on."""
        self._starts[self._gen] += 1
        return self._gen

    def _finish(self, started: int) -> None:
        self._starts[started] -= 1
        if self._starts[started] <= 0:
            del self._starts[started]
        if not self._starts:
            self._recent.clear()
        else:
            oldest = min(self._starts)
            self._recent = {s: g for s, g in self._recent.items() if g > oldest}

    def sessions_read(self, started: int, rows: Iterable[tuple[str, SessionInputs]]) -> None:
        """Record sessions read by a query that began at ``started`` (call it on failure
        too, with no rows): a session made stale since keeps no inputs."""
        if self.enabled and started >= self._barrier:
            recent = self._recent
            for sid, inputs in rows:
                if recent.get(sid, -1) <= started:
                    self._schedule.set_memo(sid, inputs)
        self._finish(started)

    def accounts_read(self, started: int, accounts: Iterable[AccountInputs]) -> None:
        """Record accounts read in one snapshot by a read that began at ``started``.

        An account with a directory or account notice since is left out (read again
        later); users with a notice since stay uncertain (``loaded_at``)."""
        if self.enabled:
            for account in accounts:
                wide = max(self._account_wide.get(account.account_id, -1), self._all_gen)
                if wide > started:
                    continue
                self._accounts[account.account_id] = account
        self._finish(started)

    # -- the backstop -----------------------------------------------------------------

    def refresh_begin(self) -> int:
        """Call just before reading every account's versions; pass the result on."""
        return self._gen

    def refresh_end(self, started: int, rows: Iterable[tuple[str, int, int]]) -> None:
        """The versions read by a query that started after ``started`` was taken: an
        account held at other versions is dropped and read again before its next
        decision (a change whose notice was lost)."""
        self._versions = {a: (d, u) for a, d, u in rows}
        current = self._versions
        for account_id, held in list(self._accounts.items()):
            if current.get(account_id, NEVER_CHANGED) != held.versions:
                del self._accounts[account_id]
        self._account_gen = {a: g for a, g in self._account_gen.items() if g > started}
        self._account_wide = {a: g for a, g in self._account_wide.items() if g > started}
        self._user_gen = {k: g for k, g in self._user_gen.items() if g > started}

    # -- what makes memory stale ----------------------------------------------------

    def account_changed(self, account_id: str | None) -> None:
        """A directory or account notice (None: everything changed)."""
        self._gen += 1
        if account_id is None:
            self._all_gen = self._gen
            self._accounts.clear()
        else:
            self._account_gen[account_id] = self._gen
            self._account_wide[account_id] = self._gen
            self._accounts.pop(account_id, None)

    def user_changed(self, account_id: str, user_id: str) -> None:
        """A user notice: only that user's sessions are uncertain until the account's
        users are read again."""
        self._gen += 1
        self._account_gen[account_id] = self._gen
        self._user_gen[(account_id, user_id)] = self._gen

    def sessions_changed(self, session_ids: Iterable[str]) -> None:
        """Ingest or a database check changed (or may have changed) these sessions' rows
        or alerts: their inputs are read again before their next decision."""
        self._gen += 1
        recent = self._recent if self._starts else None
        for sid in session_ids:
            if recent is not None:
                recent[sid] = self._gen
            self._schedule.set_memo(sid, None)

    def handover(self, partitions: set[int]) -> None:
        """Partitions came or went: another instance may have decided meanwhile.

        Reads already started record nothing; the inputs of ``partitions`` go (revoked
        partitions' sessions left the schedule with theirs)."""
        self._gen += 1
        self._barrier = self._gen
        self._schedule.clear_memos(partitions)
        if self.enabled:
            self.unread |= partitions

    def end(self, started: int, session_ids: Iterable[str]) -> None:
        """A database check that began at ``started`` is over (committed or not): what
        it decided is re-read before these sessions are decided in memory again."""
        self.sessions_changed(session_ids)
        self._finish(started)

    def held(self) -> tuple[int, int]:
        """(accounts, users) held: for the memory figures."""
        return len(self._accounts), sum(len(a.users) for a in self._accounts.values())
