"""Which sessions were already recorded in ``checked_sessions`` on the current UTC day.

The table answers "how many sessions were checked" with a UTC day's resolution
(docs/spec.md#administrator-insight), so a session needs one write a day, not one per check: with a
check every
five minutes that is 288 times fewer writes. This is the bookkeeping, kept pure (the
checks service runs the statement): ids are *claimed* before the write, so two
chunks in flight at once (a tick and an immediate re-evaluation) never write the
same session twice, and *released* when the write failed, so a later check of those
sessions tries again. After a failure nothing is claimed for ``pause`` (:data:`PAUSE`,
or one check interval when that is shorter: a session is due again after one): during an
outage the checks from memory go on, and at most one chunk in that time waits for the
write's timeout. The set is emptied when the UTC day changes, and forgets the
sessions no longer active once it holds twice as many as are active (plus 1,000):
without that it grew with every login of the day, which a soak took for a leak. It
costs about 32 MiB for a million (measured: benchmarks/README.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

# How long nothing is written after a failed write.
PAUSE = dt.timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Claim:
    """Sessions to record as checked on ``day``: parallel lists, as the statement takes them."""

    day: dt.date
    session_ids: list[str]
    account_ids: list[str]

    def __len__(self) -> int:
        return len(self.session_ids)


# A day's record forgets the sessions no longer active once it holds this many times
# the active ones, plus the slack: a prune is a pass over the record, so its cost is
# spread over the logins that doubled it, and the record follows the active sessions,
# not every login of the day.
PRUNE_FACTOR = 2
PRUNE_SLACK = 1_000


def due_for_pruning(held: int, active: int) -> bool:
    return held > PRUNE_FACTOR * active + PRUNE_SLACK


@dataclass(slots=True)
class CheckedToday:
    day: dt.date | None = None
    pause: dt.timedelta = PAUSE
    paused_until: dt.datetime | None = None
    _ids: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._ids

    def claim(self, checked: Iterable[tuple[str, str]], now: dt.datetime) -> Claim:
        """The (session, account) pairs not yet recorded on ``now``'s UTC day, each once
        (none while paused after a failure)."""
        day = now.astimezone(dt.UTC).date()
        if self.paused_until is not None and now < self.paused_until:
            return Claim(day, [], [])
        if day != self.day:
            self.day = day
            self._ids = set()
        ids = self._ids
        sessions: list[str] = []
        accounts: list[str] = []
        for sid, account in checked:
            if sid not in ids:
                ids.add(sid)
                sessions.append(sid)
                accounts.append(account)
        return Claim(day, sessions, accounts)

    def prune(self, active: Container[str]) -> int:
        """Forget the sessions no longer ``active`` (ended, expired, handed over): they
        are not checked again, so remembering them only grows the day's set with every
        login of the day. One that comes back the same day (a partition handed back) is
        claimed again: its second write changes nothing. Returns how many went."""
        before = len(self._ids)
        self._ids = {sid for sid in self._ids if sid in active}
        return before - len(self._ids)

    def failed(self, claim: Claim, now: dt.datetime) -> None:
        """The write of ``claim`` failed: its sessions are recorded at a later check,
        and nothing is claimed for ``pause``.

        A claim of a day already over is forgotten with its day."""
        self.paused_until = now + self.pause
        if claim.day == self.day:
            self._ids.difference_update(claim.session_ids)
