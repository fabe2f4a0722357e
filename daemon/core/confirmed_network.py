"""Networks a user confirmed (docs/spec.md#networks-a-user-confirmed): what may be
learned, and the step of a check that uses it.

A user who picks their own location in the app while on a network the administrator
never mapped tells us where that network is, for them. The next check of that user
on that network should not offer every location of the account again: it should say
"you told us this is home" (or nothing at all, when home is what they are assigned).

Two rules keep that safe. An entry belongs to one user of one account and is never
read for anyone else: a neighbour on the same carrier /24, or a colleague on the
same hotel Wi-Fi, must never be sent to this user's home. And the administrator's
map always wins: an entry is consulted only when no group of the account matched
the session at all, a non-locating one included ("this network tells nothing" is
not overruled by what one user once said there).

Pure: the caller hands in the user's entries; no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from e911d.daemon.core.ip import IPAddress, normalize_ip
from e911d.daemon.core.model import (
    ConfirmedNetwork,
    Location,
    MatchedBy,
    Outcome,
    Recommendation,
    RecommendationKind,
    SignalMatch,
    User,
    Verdict,
)
from e911d.daemon.core.network import NetworkSignals
from e911d.daemon.core.network_key import (
    DEFAULT_IPV4_PREFIX,
    DEFAULT_IPV6_PREFIX,
    NetworkKey,
    network_key,
    network_keys,
)


class Confirmation(enum.StrEnum):
    """What became of a location change made in the app (``changed_via: app``, to a
    location): learned, or why not. The labels of ``e911_confirmations_total``."""

    LEARNED = "learned"
    # The named session is not the user's own live one, or none was named and the user
    # has no live session.
    SESSION_UNKNOWN = "session_unknown"
    # None was named and the user has several live sessions: which one is unknown.
    SESSIONS_SEVERAL = "sessions_several"
    USER_UNKNOWN = "user_unknown"
    LOCATION_UNKNOWN = "location_unknown"
    # A group of the account decides the session's network: nothing to learn there.
    NETWORK_LOCATED = "network_located"


@dataclass(frozen=True, slots=True)
class KeyPrefixes:
    """How wide an IP-prefix key is, per family (the ``learning`` settings)."""

    ipv4: int = DEFAULT_IPV4_PREFIX
    ipv6: int = DEFAULT_IPV6_PREFIX


def session_keys(
    ip: IPAddress, network: NetworkSignals | None, prefixes: KeyPrefixes
) -> tuple[NetworkKey, ...]:
    """The session's keys, most specific first (an IPv4-mapped address as IPv4, as the
    directory matches it)."""
    return network_keys(normalize_ip(ip), network, prefixes.ipv4, prefixes.ipv6)


class UserConfirmed:
    """One user's confirmed networks, as a check reads them.

    Entries of any other user or account handed in are dropped here, so a wrong read
    can never make one user's home decide for another.
    """

    __slots__ = ("_by_key", "account_id", "prefixes", "user_id")

    def __init__(
        self,
        account_id: str,
        user_id: str,
        entries: Iterable[ConfirmedNetwork],
        prefixes: KeyPrefixes = KeyPrefixes(),
    ) -> None:
        self.account_id = account_id
        self.user_id = user_id
        self.prefixes = prefixes
        self._by_key: Mapping[NetworkKey, ConfirmedNetwork] = {
            e.key: e for e in entries if e.account_id == account_id and e.user_id == user_id
        }

    def __len__(self) -> int:
        return len(self._by_key)

    @property
    def entries(self) -> tuple[ConfirmedNetwork, ...]:
        return tuple(self._by_key[k] for k in sorted(self._by_key))

    def lookup(
        self, user: User, ip: IPAddress, network: NetworkSignals | None
    ) -> ConfirmedNetwork | None:
        """``user``'s entry for the session's network: BSSID, then switch port, then IP
        prefix. None for any other user, whatever this holds."""
        if user.account_id != self.account_id or user.user_id != self.user_id:
            return None
        if not self._by_key:
            return None
        for key in session_keys(ip, network, self.prefixes):
            hit = self._by_key.get(key)
            if hit is not None:
                return hit
        return None


def confirmed_verdict(
    locations: Mapping[str, Location], assigned: Location | None, entry: ConfirmedNetwork
) -> Verdict | None:
    """The check's outcome when ``entry`` decides: ``match`` when the user is assigned
    the confirmed location, else a ``user_confirmed`` mismatch recommending it alone.

    None when the confirmed location is gone from the account (its entries are deleted
    with it; until then the entry simply does not count).
    """
    chosen = locations.get(entry.location_id)
    if chosen is None:
        return None
    match = SignalMatch(
        MatchedBy.USER_CONFIRMED, frozenset({chosen.location_id}), (), True, entry.key.display
    )
    if assigned is not None and assigned.location_id == chosen.location_id:
        return Verdict(Outcome.MATCH, assigned_location=assigned, match=match, confirmed=entry)
    return Verdict(
        Outcome.MISMATCH,
        assigned_location=assigned,
        recommendation=Recommendation(
            RecommendationKind.USER_CONFIRMED, (chosen,), MatchedBy.USER_CONFIRMED
        ),
        match=match,
        confirmed=entry,
    )


def learned_key(
    decided: SignalMatch | None,
    ip: IPAddress,
    network: NetworkSignals | None,
    prefixes: KeyPrefixes,
) -> NetworkKey | None:
    """The key a confirmation made on this session is remembered under, or None.

    ``decided``: what the account's directory matched for the session
    (``AccountDirectory.locate``). Nothing is learned where any group decides: a
    locating one already says where the session is, and a non-locating one says the
    network tells nothing about where the person is (an entry there could never
    decide anyway, since that group wins over it).
    """
    if decided is not None:
        return None
    return network_key(normalize_ip(ip), network, prefixes.ipv4, prefixes.ipv6)
