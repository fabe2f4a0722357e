"""Every input of a check, held in memory, and the decision made from it.

The database path (daemon/store/check_batches.py) reads a session, its user, its
account, the account's directory and the session's open alert, then calls
:func:`~e911d.daemon.core.evaluation.evaluate` and
:func:`~e911d.daemon.core.evaluation.decide`. Memory holds the same values and calls the
same two functions: there is no second implementation of the rules. Whatever memory
decides that is not "nothing to do" (a raise, a resolve, a supersede) is handed to the
database path, which re-reads everything under the session's lock and is the only
writer: a stale memory can send a session to the database for nothing, never write.

Sizes (measured by ``benchmarks.checks_memory``, see docs/architecture.md): a session
costs one :class:`SessionInputs` and its address; its account and user ids are shared
strings and its open alert an :class:`OpenAlert` shared by every session with the same
fingerprint and assigned location. A user costs one :class:`UserInputs`.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from e911d.daemon.core.confirmed_network import UserConfirmed
from e911d.daemon.core.evaluation import AccountDirectory, AlertDecision, decide, evaluate
from e911d.daemon.core.geo import GeoCheck
from e911d.daemon.core.ip import IPAddress
from e911d.daemon.core.model import Account, OpenAlert, Outcome, User, Verdict
from e911d.daemon.core.network import NetworkSignals

# (directory version, user version) of one account; (0, 0) before its first change.
Versions = tuple[int, int]
NEVER_CHANGED: Versions = (0, 0)


@dataclass(slots=True, eq=False)
class SessionInputs:
    """What a check reads of the session itself: its row and its open alert.

    ``alert`` carries no id (memory never writes): only what :func:`decide` compares.
    The inputs are never changed in place: a change replaces the object. Only the last
    decision made from them is kept beside them (``decided_on``, ``outcome``,
    ``unlocated``): valid while the account's inputs are the very object it was made
    on (a re-read replaces that object), so a steady check is a comparison, not an
    evaluation.
    """

    account_id: str
    user_id: str
    # The address packed (4 or 16 bytes): about 40 bytes less a session than an
    # ``ipaddress`` object; unpacked only when memory evaluates (not on a kept decision).
    packed: bytes
    network: NetworkSignals | None
    alert: OpenAlert | None
    decided_on: AccountInputs | None = None
    outcome: Outcome | None = None
    unlocated: bool = False

    @property
    def ip(self) -> IPAddress:
        return ipaddress.ip_address(self.packed)


@dataclass(frozen=True, slots=True)
class UserInputs:
    """One user as a check reads it; ``confirmed_until``: the epoch second its first
    confirmed network expires (memory stops deciding for the user from then: the
    database path reads the entries with the clock)."""

    user: User
    confirmed: UserConfirmed | None = None
    confirmed_until: float = math.inf


@dataclass(frozen=True, slots=True)
class AccountInputs:
    """One account's toggle, directory and users, read in one snapshot.

    ``account`` None: the account is unknown (every session decides ``unknown_user``,
    as in the database). ``versions``: the account's input versions in that snapshot,
    compared with the versions re-read once per tick (the backstop for a lost notice).
    ``loaded_at``: the book's generation when the read started (user notices after it
    make that user's sessions uncertain until the next read).
    """

    account_id: str
    account: Account | None
    directory: AccountDirectory | None
    versions: Versions
    users: Mapping[str, UserInputs] = field(default_factory=dict)
    loaded_at: int = 0


def decide_from(
    account: AccountInputs, session: SessionInputs, geo: GeoCheck | None = None
) -> tuple[Verdict, AlertDecision]:
    """The database path's decision on the same inputs, without snoozes (a snooze only
    ever turns a raise into nothing, and a raise goes to the database anyway)."""
    entry = account.users.get(session.user_id)
    user = entry.user if entry is not None else None
    confirmed = entry.confirmed if entry is not None else None
    directory = account.directory if account.account is not None else None
    verdict = evaluate(
        directory,
        account.account,
        user,
        session.ip,
        network=session.network,
        geo=geo,
        confirmed=confirmed,
    )
    return verdict, decide(verdict, session.alert)


# Interning tables start afresh past these sizes: ids and fingerprints no longer in use
# (users gone, alerts resolved) would otherwise accumulate over weeks. Values already
# handed out stay shared; only later reads allocate anew until the table refills.
MAX_NAMES = 1_000_000
MAX_ALERTS = 250_000


class Shared:
    """Interning: the ids and open alerts a million sessions hold are a few hundred
    thousand distinct values; each is kept once."""

    __slots__ = ("_alerts", "_names")

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._alerts: dict[tuple[str, str | None], OpenAlert] = {}

    def name(self, value: str) -> str:
        hit = self._names.get(value)
        if hit is None:
            if len(self._names) >= MAX_NAMES:
                self._names.clear()
            hit = self._names[value] = value
        return hit

    def alert(self, fingerprint: str | None, location_id: str | None) -> OpenAlert | None:
        if fingerprint is None:
            return None
        key = (fingerprint, location_id)
        hit = self._alerts.get(key)
        if hit is None:
            if len(self._alerts) >= MAX_ALERTS:
                self._alerts.clear()
            hit = self._alerts[key] = OpenAlert("", fingerprint, location_id)
        return hit

    def session(
        self,
        account_id: str,
        user_id: str,
        ip: IPAddress,
        network: NetworkSignals | None,
        fingerprint: str | None,
        alert_location_id: str | None,
    ) -> SessionInputs:
        return SessionInputs(
            self.name(account_id),
            self.name(user_id),
            ip.packed,
            network,
            self.alert(fingerprint, alert_location_id),
        )
