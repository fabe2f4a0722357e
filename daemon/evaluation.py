"""The pure decision of a check (SPEC §2.1, §2.3).

Nothing here performs I/O: the caller hands in the account's directory snapshot, the
user, the IP and the session's open alert, and gets back a verdict and the alert
transitions to apply. That keeps the rules that send an ambulance to the right
building testable with plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from e911d.consumers.ip import IPAddress, normalize_ip
from e911d.daemon.model import (
    Account,
    IpGroup,
    Location,
    MatchedBy,
    OpenAlert,
    Outcome,
    Recommendation,
    RecommendationKind,
    ResolveReason,
    User,
    Verdict,
)


def effective_setting(account: Account, user: User) -> bool:
    """The account toggle, when on, overrides the user's own; off, the user's decides."""
    return account.e911_recommendations or user.e911_recommendations


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    prefix_len: int
    location_ids: frozenset[str]
    ip_group_ids: tuple[str, ...]


@dataclass(slots=True)
class _Table:
    """Networks of one address family, bucketed by prefix length.

    ``freeze`` compiles every network into its answer once per snapshot, so a lookup
    (once per check) is a few dict probes and no allocation.
    """

    max_bits: int
    building: dict[int, dict[int, tuple[set[str], set[str]]]] = field(default_factory=dict)
    compiled: list[tuple[int, dict[int, PrefixMatch]]] = field(default_factory=list)

    def add(self, network_int: int, prefix_len: int, location_id: str, group_id: str) -> None:
        bucket = self.building.setdefault(prefix_len, {})
        locs, groups = bucket.setdefault(network_int, (set(), set()))
        locs.add(location_id)
        groups.add(group_id)

    def freeze(self) -> None:
        self.compiled = [
            (
                ((1 << length) - 1) << (self.max_bits - length),
                {
                    net: PrefixMatch(length, frozenset(locs), tuple(sorted(groups)))
                    for net, (locs, groups) in self.building[length].items()
                },
            )
            for length in sorted(self.building, reverse=True)
        ]
        self.building = {}

    def lookup(self, ip_int: int) -> PrefixMatch | None:
        for mask, bucket in self.compiled:
            hit = bucket.get(ip_int & mask)
            if hit is not None:
                return hit
        return None


class AccountDirectory:
    """One account's locations and IP groups, compiled for longest-prefix lookups.

    A snapshot is immutable once built; a directory change builds a new one.
    """

    __slots__ = ("_v4", "_v6", "account_id", "locations", "locations_with_groups", "version")

    def __init__(
        self,
        account_id: str,
        locations: Iterable[Location],
        ip_groups: Iterable[IpGroup],
        version: int = 0,
    ) -> None:
        self.account_id = account_id
        self.version = version
        self.locations: Mapping[str, Location] = {loc.location_id: loc for loc in locations}
        self._v4 = _Table(32)
        self._v6 = _Table(128)
        with_groups: set[str] = set()
        for group in ip_groups:
            # IP groups not tied to a location are ignored entirely, so they can never
            # shadow a less specific network that does lead to a location.
            if group.location_id is None or group.location_id not in self.locations:
                continue
            for net in group.networks:
                table = self._v4 if net.version == 4 else self._v6
                table.add(
                    int(net.network_address), net.prefixlen, group.location_id, group.ip_group_id
                )
                with_groups.add(group.location_id)
        self._v4.freeze()
        self._v6.freeze()
        self.locations_with_groups: frozenset[str] = frozenset(with_groups)

    def match(self, ip: IPAddress) -> PrefixMatch | None:
        """Locations reached through the longest prefix that contains ``ip``."""
        ip = normalize_ip(ip)
        table = self._v4 if ip.version == 4 else self._v6
        return table.lookup(int(ip))

    def sorted_locations(self, ids: Iterable[str] | None = None) -> tuple[Location, ...]:
        chosen = self.locations.values() if ids is None else (self.locations[i] for i in ids)
        return tuple(sorted(chosen, key=lambda loc: (loc.name, loc.location_id)))


def evaluate(
    directory: AccountDirectory | None,
    account: Account | None,
    user: User | None,
    ip: IPAddress,
) -> Verdict:
    """SPEC §2.3 steps 1-4 for one session."""
    if directory is None or account is None or user is None:
        return Verdict(Outcome.UNKNOWN_USER)
    if not effective_setting(account, user):
        return Verdict(Outcome.DISABLED)
    hit = directory.match(ip)
    matches = hit.location_ids if hit else frozenset()
    prefix_len = hit.prefix_len if hit else None
    groups = hit.ip_group_ids if hit else ()
    # A location id that names no location of the account is as unsafe as none at all.
    assigned = directory.locations.get(user.e911_location_id) if user.e911_location_id else None

    def mismatch_for(kind: RecommendationKind, ids: Iterable[str] | None) -> Verdict:
        return Verdict(
            Outcome.MISMATCH,
            assigned_location=assigned,
            recommendation=Recommendation(
                kind,
                directory.sorted_locations(ids),
                MatchedBy.IP if kind is RecommendationKind.IP_GROUP_MATCH else None,
            ),
            matched_prefix_len=prefix_len,
            matched_ip_groups=groups,
        )

    if assigned is None:
        if matches:
            return mismatch_for(RecommendationKind.IP_GROUP_MATCH, matches)
        return mismatch_for(RecommendationKind.ALL_LOCATIONS, None)
    if matches:
        if assigned.location_id in matches:
            return Verdict(
                Outcome.MATCH,
                assigned_location=assigned,
                matched_prefix_len=prefix_len,
                matched_ip_groups=groups,
            )
        return mismatch_for(RecommendationKind.IP_GROUP_MATCH, matches)
    if assigned.location_id in directory.locations_with_groups:
        return mismatch_for(RecommendationKind.ALL_LOCATIONS, None)
    return Verdict(Outcome.UNDETERMINED, assigned_location=assigned)


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """Alert transitions for one session: resolve the open one, raise a new one, or both."""

    resolve: ResolveReason | None = None
    raise_fingerprint: str | None = None
    snoozed: bool = False

    @property
    def changes_nothing(self) -> bool:
        return self.resolve is None and self.raise_fingerprint is None


KEEP = AlertDecision()


def decide(
    verdict: Verdict,
    open_alert: OpenAlert | None,
    snoozed_fingerprints: frozenset[str] = frozenset(),
) -> AlertDecision:
    """SPEC §2.3 step 5: never a second alert for an unchanged mismatch.

    An alert settled while the user's assigned location differs from the one it was
    raised against is resolved as ``location_updated`` (the user fixed it), otherwise
    as ``location_matched`` (the user moved). The reason comes from the stored state,
    not from how the daemon heard of the change, so a missed notice, a catch-up or a
    scheduled check all give the same answer. A mismatch that persists is still
    ``superseded`` and a disabled user ``recommendations_disabled``: those say what
    the subscriber must do next. ``snoozed_fingerprints`` are mismatches the user
    dismissed recently.
    """
    outcome = verdict.outcome
    if outcome is Outcome.UNKNOWN_USER:
        return KEEP
    if outcome is Outcome.DISABLED:
        if open_alert is None:
            return KEEP
        return AlertDecision(resolve=ResolveReason.RECOMMENDATIONS_DISABLED)
    if outcome in (Outcome.MATCH, Outcome.UNDETERMINED):
        if open_alert is None:
            return KEEP
        assigned = verdict.assigned_location
        now_assigned = assigned.location_id if assigned is not None else None
        if open_alert.assigned_location_id != now_assigned:
            return AlertDecision(resolve=ResolveReason.LOCATION_UPDATED)
        return AlertDecision(resolve=ResolveReason.LOCATION_MATCHED)
    fingerprint = verdict.fingerprint
    assert fingerprint is not None  # noqa: S101  a mismatch always carries a recommendation
    if open_alert is not None and open_alert.fingerprint == fingerprint:
        return KEEP
    resolve = None if open_alert is None else ResolveReason.SUPERSEDED
    if fingerprint in snoozed_fingerprints:
        return AlertDecision(resolve=resolve, snoozed=True)
    return AlertDecision(resolve=resolve, raise_fingerprint=fingerprint)
