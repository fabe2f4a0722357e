"""The values of ``e911d report networks`` and the arithmetic on them, with no I/O
(docs/spec.md#networks-nobody-configured).

SQL returns one row per recorded network and the confirmations on it; here they
become :class:`NetworkReport` rows: busiest first, with the locations users confirmed
there, each with its share, and the network's *agreement*, the share of the users who
confirmed a location on it who chose the most chosen one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from e911d.daemon.core.network_key import NetworkKey


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The users who confirmed one location on one network."""

    location_id: str
    name: str | None  # None: the location no longer exists
    users: int


@dataclass(frozen=True, slots=True)
class NetworkRow:
    """What SQL returns for one network of one account over the window."""

    account_id: str
    key: NetworkKey
    users: int  # the most distinct users on one UTC day
    sessions: int  # distinct sessions per day, summed over the days
    days: int
    first_day: dt.date
    last_day: dt.date


@dataclass(frozen=True, slots=True)
class NetworkReport:
    account_id: str
    key: NetworkKey
    users: int
    sessions: int
    days: int
    first_day: dt.date
    last_day: dt.date
    # Most confirmed first (ties by location id); shares are of ``confirmed_users``.
    confirmations: tuple[Confirmation, ...]
    confirmed_users: int
    agreement: float | None  # None: nobody confirmed a location here
    # The network is now matched by an IP group of the account: configured since.
    configured_now: bool = False

    @property
    def agreed(self) -> Confirmation | None:
        """The most chosen location (None: no confirmation)."""
        return self.confirmations[0] if self.confirmations else None

    def share(self, confirmation: Confirmation) -> float:
        return confirmation.users / self.confirmed_users

    def suggests(self, agreement: float) -> Confirmation | None:
        """The location a suggested group would be tied to: the agreed one, when the
        agreement reaches ``agreement``, the location still exists, and no group
        locates the network yet."""
        chosen = self.agreed
        if (
            chosen is None
            or chosen.name is None
            or self.configured_now
            or self.agreement is None
            or self.agreement < agreement
        ):
            return None
        return chosen


def agreement_of(confirmations: Iterable[Confirmation]) -> float | None:
    """The share of the confirming users who chose the most chosen location."""
    counts = [c.users for c in confirmations]
    total = sum(counts)
    return None if total == 0 else max(counts) / total


def build_network(row: NetworkRow, confirmations: Sequence[Confirmation] = ()) -> NetworkReport:
    ordered = tuple(sorted(confirmations, key=lambda c: (-c.users, c.location_id)))
    return NetworkReport(
        account_id=row.account_id,
        key=row.key,
        users=row.users,
        sessions=row.sessions,
        days=row.days,
        first_day=row.first_day,
        last_day=row.last_day,
        confirmations=ordered,
        confirmed_users=sum(c.users for c in ordered),
        agreement=agreement_of(ordered),
    )


def busiest_first(networks: Iterable[NetworkReport]) -> list[NetworkReport]:
    """By users, then sessions, then days, each descending; then account and key, so
    that the same data always lists in the same order."""
    return sorted(
        networks,
        key=lambda n: (-n.users, -n.sessions, -n.days, n.account_id, n.key.kind, n.key.value),
    )


@dataclass(frozen=True, slots=True)
class NetworksReport:
    generated_at: dt.datetime
    first_day: dt.date
    last_day: dt.date
    min_users: int
    agreement: float  # learning.agreement: the share --format directory requires
    networks: tuple[NetworkReport, ...]
    # Whether the window reaches back further than the retention keeps.
    beyond_retention: bool = False


def group_confirmations(
    rows: Iterable[tuple[str, NetworkKey, Confirmation]],
) -> Mapping[tuple[str, NetworkKey], list[Confirmation]]:
    out: dict[tuple[str, NetworkKey], list[Confirmation]] = {}
    for account_id, key, confirmation in rows:
        out.setdefault((account_id, key), []).append(confirmation)
    return out
