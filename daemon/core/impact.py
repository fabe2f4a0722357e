"""What a directory import would do to the alerts of live sessions
(docs/spec.md#impact-before-import), decided by the checks' own rules.

Each live session is decided twice by :func:`check_decision` (the one place where the
impact calls the rules; it takes what a check takes): under the directory as it is
and under the directory the import would leave, both from the session's open alert
and its dismissal snoozes. Only the sessions whose next check would act differently
count, each once, under what the next check would do with the file's directory:

- ``raised``: a new alert, on a session with none open;
- ``superseded``: the open alert is resolved as ``superseded`` (and the new mismatch
  raised, unless the user dismissed that same mismatch within the snooze);
- ``resolved``: the open alert is resolved (counted by reason too);
- ``averted``: the next check would do nothing, where under the current directory it
  would raise, supersede or resolve.

So "40 raised" means: 40 sessions get an alert at their next check because of this
import, which they would not get without it. What every next check would do anyway is
tallied beside it, under either directory (``next_check``).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from e911d.daemon.core.confirmed_network import UserConfirmed
from e911d.daemon.core.evaluation import KEEP, AccountDirectory, AlertDecision, decide, evaluate
from e911d.daemon.core.geo import GeoCheck
from e911d.daemon.core.ip import IPAddress
from e911d.daemon.core.model import Account, OpenAlert, ResolveReason, User, Verdict
from e911d.daemon.core.network import NetworkSignals

NO_SNOOZES: Final[frozenset[str]] = frozenset()


def check_decision(
    directory: AccountDirectory | None,
    account: Account | None,
    user: User | None,
    ip: IPAddress,
    network: NetworkSignals | None,
    open_alert: OpenAlert | None,
    snoozed: frozenset[str],
    geo: GeoCheck | None,
    confirmed: UserConfirmed | None = None,
) -> tuple[Verdict, AlertDecision]:
    """A check's verdict and alert transitions for one session, as
    :class:`~e911d.daemon.store.check_batches.CheckRunner` decides them: the same
    inputs (the user's confirmed networks among them), the same two calls. Any new
    input of a check is added here, and both sides of the impact get it."""
    verdict = evaluate(directory, account, user, ip, network=network, geo=geo, confirmed=confirmed)
    return verdict, decide(verdict, open_alert, snoozed)


class Action(enum.StrEnum):
    """What a check does to a session's alerts."""

    NONE = "none"
    RAISE = "raise"
    SUPERSEDE = "supersede"
    RESOLVE = "resolve"


def action_of(decision: AlertDecision) -> Action:
    if decision.resolve is ResolveReason.SUPERSEDED:
        return Action.SUPERSEDE
    if decision.resolve is not None:
        return Action.RESOLVE
    if decision.raise_fingerprint is not None:
        return Action.RAISE
    return Action.NONE


class Change(enum.StrEnum):
    """How the import changes a session's next check: named by what happens then."""

    RAISED = "raised"
    SUPERSEDED = "superseded"
    RESOLVED = "resolved"
    AVERTED = "averted"


CHANGES: Final = tuple(Change)
_CHANGE_OF: Final[Mapping[Action, Change]] = {
    Action.RAISE: Change.RAISED,
    Action.SUPERSEDE: Change.SUPERSEDED,
    Action.RESOLVE: Change.RESOLVED,
    Action.NONE: Change.AVERTED,
}


def same_transitions(a: AlertDecision, b: AlertDecision) -> bool:
    """Whether two decisions write the same alert transitions (a snooze that holds back
    a raise writes none, like no mismatch at all)."""
    return a is b or (a.resolve is b.resolve and a.raise_fingerprint == b.raise_fingerprint)


def change_of(now: AlertDecision, after: AlertDecision) -> Change | None:
    """The import's effect on one session's next check; None when it has none."""
    if same_transitions(now, after):
        return None
    return _CHANGE_OF[action_of(after)]


@dataclass(frozen=True, slots=True)
class Side:
    """One session's next check under one directory, as an example shows it."""

    outcome: str
    action: Action
    reason: str | None
    assigned_location_id: str | None
    recommended: tuple[str, ...]

    @classmethod
    def of(cls, verdict: Verdict, decision: AlertDecision) -> Side:
        rec = verdict.recommendation
        assigned = verdict.assigned_location
        return cls(
            str(verdict.outcome),
            action_of(decision),
            None if decision.resolve is None else str(decision.resolve),
            None if assigned is None else assigned.location_id,
            () if rec is None else tuple(loc.location_id for loc in rec.locations),
        )


@dataclass(frozen=True, slots=True)
class Example:
    session_id: str
    user_id: str
    ip: str
    now: Side
    after: Side


def _tally() -> Counter[str]:
    return Counter({str(a): 0 for a in Action if a is not Action.NONE})


@dataclass(slots=True)
class AccountImpact:
    """The impact on one account's live sessions; ``examples`` keeps, per change, the
    ``keep`` changed sessions with the smallest ids (the same ones every run)."""

    account_id: str
    keep: int
    sessions: int = 0
    now: Counter[str] = field(default_factory=_tally)
    after: Counter[str] = field(default_factory=_tally)
    changed: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(CHANGES, 0)))
    resolved_by_reason: Counter[str] = field(default_factory=Counter)
    examples: dict[Change, list[Example]] = field(default_factory=dict)

    def add(self, now: AlertDecision, after: AlertDecision) -> Change | None:
        """Count one session; returns its change, for which the caller may offer an
        example (:meth:`wants`, :meth:`example`)."""
        self.sessions += 1
        if now is KEEP and after is KEEP:  # most sessions: nothing to count
            return None
        a_now, a_after = action_of(now), action_of(after)
        if a_now is not Action.NONE:
            self.now[a_now] += 1
        if a_after is not Action.NONE:
            self.after[a_after] += 1
        change = change_of(now, after)
        if change is not None:
            self.changed[change] += 1
            if change is Change.RESOLVED and after.resolve is not None:
                self.resolved_by_reason[after.resolve] += 1
        return change

    def wants(self, change: Change, session_id: str) -> bool:
        if self.keep <= 0:
            return False
        kept = self.examples.get(change)
        return kept is None or len(kept) < self.keep or session_id < kept[-1].session_id

    def example(self, change: Change, example: Example) -> None:
        kept = self.examples.setdefault(change, [])
        kept.append(example)
        kept.sort(key=lambda e: e.session_id)
        del kept[self.keep :]

    def merged(self, other: AccountImpact) -> AccountImpact:
        """This account's counts and examples with another part's of the same account."""
        out = AccountImpact(self.account_id, self.keep, self.sessions + other.sessions)
        for mine, theirs, total in (
            (self.now, other.now, out.now),
            (self.after, other.after, out.after),
            (self.changed, other.changed, out.changed),
            (self.resolved_by_reason, other.resolved_by_reason, out.resolved_by_reason),
        ):
            total.update(mine)
            total.update(theirs)
        for change in CHANGES:
            both = self.examples.get(change, []) + other.examples.get(change, [])
            if both:
                out.examples[change] = sorted(both, key=lambda e: e.session_id)[: self.keep]
        return out

    @property
    def changed_sessions(self) -> int:
        return sum(self.changed.values())


def totals(accounts: list[AccountImpact]) -> AccountImpact:
    """Every account's counts added up (no examples)."""
    out = AccountImpact("", 0)
    for a in accounts:
        out.sessions += a.sessions
        out.now.update(a.now)
        out.after.update(a.after)
        out.changed.update(a.changed)
        out.resolved_by_reason.update(a.resolved_by_reason)
    return out
