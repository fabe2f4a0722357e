"""Sessions on networks nobody configured (docs/spec.md#networks-nobody-configured).

A checked session is *unlocated* when its check reached the matching step (the
account and user are known, recommendations are on, the account has locations) and no
IP group of the account matched any of the session's signals: no BSSID, no switch
port or switch, no IP network, locating or not. A non-locating group (a VPN egress)
is something an administrator configured, so a session it matched is not on a
network nobody configured; a user's confirmed network or the geolocation check may
still decide such a session, and it is recorded all the same, since neither is the
administrator's map.

Each unlocated session is recorded once per UTC day and network key
(:mod:`e911d.daemon.core.network_key`): this module is that day's bookkeeping, kept
pure like :mod:`e911d.daemon.core.checked_today` (the checks service runs the
statement). A session decided from memory (:mod:`e911d.daemon.core.memo`) carries no
network key, so a session known to be unlocated but not yet recorded on the current
day is sent to the database path once (:meth:`UnlocatedToday.needs_database`), which
reads its network and records it: one database check a day per such session, instead
of a key kept in every memo.

Memory: the sessions recorded today (with their key's hash) and those known unlocated
but not yet recorded today; both are emptied a day after they were last touched, and
forget the sessions no longer active once they hold twice as many as are active (plus
1,000), as the sessions-checked record does: about 63 MiB for a million unlocated
sessions recorded today, 32 MiB once carried to the next day (the ids are the
schedule's own strings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Container, Iterable
from dataclasses import dataclass, field
from typing import Final

from e911d.daemon.core.model import MatchedBy, Outcome, Verdict
from e911d.daemon.core.network_key import NetworkKey

# Outcomes whose check reached the matching step (docs/spec.md#what-a-check-decides).
_MATCHED_OUTCOMES: Final = frozenset({Outcome.MATCH, Outcome.MISMATCH, Outcome.UNDETERMINED})
# The administrator's signals (docs/spec.md#signal-precedence); geoip, or a user's
# confirmed network, are not a group the administrator configured.
ADMINISTRATOR_SIGNALS: Final = frozenset(
    {MatchedBy.BSSID, MatchedBy.SWITCH_PORT, MatchedBy.SWITCH, MatchedBy.IP}
)
# How long nothing is claimed after a failed write (as for the sessions-checked record).
PAUSE: Final = dt.timedelta(seconds=10)


def is_unlocated(verdict: Verdict) -> bool:
    """The check reached matching and no group of the account matched any signal."""
    if verdict.outcome not in _MATCHED_OUTCOMES:
        return False
    return verdict.match is None or verdict.match.signal not in ADMINISTRATOR_SIGNALS


@dataclass(frozen=True, slots=True)
class Sighting:
    """One unlocated session on one network, as a check saw it."""

    session_id: str
    account_id: str
    user_id: str
    key: NetworkKey


@dataclass(frozen=True, slots=True)
class SightingClaim:
    """Sightings to record on ``day``."""

    day: dt.date
    sightings: list[Sighting]

    def __len__(self) -> int:
        return len(self.sightings)


@dataclass(slots=True)
class UnlocatedToday:
    day: dt.date | None = None
    pause: dt.timedelta = PAUSE
    paused_until: dt.datetime | None = None
    # session -> the hash of the key recorded for it today (the last one, when it
    # moved): an int instead of the key and its text, about 100 bytes less a session.
    # Two keys of one session with the same hash (about 2**-64) would record the second
    # a day late: evidence, not an alert.
    _today: dict[str, int] = field(default_factory=dict)
    # Sessions known unlocated but not recorded today, which memory must not decide:
    # those recorded the day before, and those whose write failed or was paused today
    # (also in ``_failed``, so that they outlive the next roll). A session leaves it as
    # soon as the database path decides it.
    _due: set[str] = field(default_factory=set)
    _failed: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self._today)

    def roll(self, now: dt.datetime) -> dt.date:
        """Start a new day when ``now`` is on another UTC day than the last call. What
        was due and not seen all day is forgotten: those sessions ended."""
        day = now.astimezone(dt.UTC).date()
        if day != self.day:
            if self.day is not None:
                self._due = set(self._today) | self._failed
            self._failed = set()
            self._today = {}
            self.day = day
        return day

    @property
    def due(self) -> Collection[str]:
        """The sessions memory must not decide today (call :meth:`roll` first); the
        tick tests each session it would decide from memory against it, so it is a
        set, not a method: one lookup per session."""
        return self._due

    def needs_database(self, session_id: str) -> bool:
        return session_id in self._due

    def recorded(self, session_id: str, key: NetworkKey) -> bool:
        """Whether the session was recorded on ``key`` today: memory decides an
        unlocated session only then (the database path records it)."""
        return self._today.get(session_id) == hash(key)

    def claim(
        self, decided: Iterable[str], sightings: Iterable[Sighting], now: dt.datetime
    ) -> SightingClaim:
        """The sightings not yet recorded today, from the sessions the database path
        ``decided`` (``sightings`` are those of them that were unlocated)."""
        day = self.roll(now)
        due, failed = self._due, self._failed
        for sid in decided:
            due.discard(sid)
            failed.discard(sid)
        paused = self.paused_until is not None and now < self.paused_until
        new: list[Sighting] = []
        for s in sightings:
            key = hash(s.key)
            if self._today.get(s.session_id) == key:
                continue
            if paused:
                due.add(s.session_id)
                failed.add(s.session_id)
                continue
            self._today[s.session_id] = key
            new.append(s)
        return SightingClaim(day, new)

    def prune(self, active: Container[str]) -> int:
        """Forget the sessions no longer ``active`` (ended, expired, handed over), as
        :meth:`CheckedToday.prune <e911d.daemon.core.checked_today.CheckedToday.prune>`
        does: one handed back the same day is recorded again, which changes nothing.
        Returns how many went."""
        before = len(self._today)
        self._today = {sid: key for sid, key in self._today.items() if sid in active}
        self._due = {sid for sid in self._due if sid in active}
        self._failed = {sid for sid in self._failed if sid in active}
        return before - len(self._today)

    def failed(self, claim: SightingClaim, now: dt.datetime) -> None:
        """The write of ``claim`` failed: its sessions go to the database path again at
        a later check (after ``pause``). A claim of a day already over is forgotten."""
        self.paused_until = now + self.pause
        if claim.day != self.day:
            return
        for s in claim.sightings:
            if self._today.get(s.session_id) == hash(s.key):
                del self._today[s.session_id]
                self._due.add(s.session_id)
                self._failed.add(s.session_id)
