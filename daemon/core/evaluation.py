"""The pure decision of a check (docs/spec.md#effective-setting, #what-a-check-decides).

Nothing here performs I/O: the caller hands in the account's directory snapshot, the
user, the IP and the session's open alert, and gets back a verdict and the alert
transitions to apply. That keeps the rules that send an ambulance to the right
building testable with plain values.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from e911d.daemon.core.confirmed_network import UserConfirmed, confirmed_verdict
from e911d.daemon.core.geo import GeoCheck, geolocate
from e911d.daemon.core.ip import IPAddress, IPNetwork, normalize_ip
from e911d.daemon.core.model import (
    Account,
    IpGroup,
    Location,
    MatchedBy,
    OpenAlert,
    Outcome,
    Recommendation,
    RecommendationKind,
    ResolveReason,
    SignalMatch,
    User,
    Verdict,
    recommended_key,
)
from e911d.daemon.core.network import NetworkSignals, bssid_candidates


def effective_setting(account: Account, user: User) -> bool:
    """The account toggle, when on, overrides the user's own; off, the user's decides."""
    return account.e911_recommendations or user.e911_recommendations


# The groups that list one directory entry (a network, a BSSID, a port), gathered
# while a snapshot is built and compiled into that entry's answer by ``_entry``.
_Building = list[IpGroup]


def _entry(
    groups: _Building, signal: MatchedBy, key: str, prefix_len: int | None = None
) -> SignalMatch:
    """The locations the entry's locating groups lead to; any non-locating group among
    them makes the whole entry non-locating."""
    return SignalMatch(
        signal,
        frozenset(g.location_id for g in groups if g.locating and g.location_id is not None),
        tuple(sorted({g.ip_group_id for g in groups})),
        all(g.locating for g in groups),
        key,
        prefix_len,
    )


@dataclass(slots=True)
class _Table:
    """Networks of one address family, bucketed by prefix length.

    ``freeze`` compiles every network into its answer once per snapshot, so a lookup
    (once per check) is a few dict probes and no allocation.
    """

    max_bits: int
    building: dict[int, dict[int, _Building]] = field(default_factory=dict)
    compiled: list[tuple[int, dict[int, SignalMatch]]] = field(default_factory=list)

    def add(self, net: IPNetwork, group: IpGroup) -> None:
        bucket = self.building.setdefault(net.prefixlen, {})
        bucket.setdefault(int(net.network_address), []).append(group)

    def freeze(self) -> None:
        def key(net: int, length: int) -> str:
            return str(ipaddress.ip_network((net, length)))

        self.compiled = [
            (
                ((1 << length) - 1) << (self.max_bits - length),
                {
                    net: _entry(b, MatchedBy.IP, key(net, length), length)
                    for net, b in self.building[length].items()
                },
            )
            for length in sorted(self.building, reverse=True)
        ]
        self.building = {}

    def lookup(self, ip_int: int) -> SignalMatch | None:
        for mask, bucket in self.compiled:
            hit = bucket.get(ip_int & mask)
            if hit is not None:
                return hit
        return None


def _compile(building: dict[str, _Building], signal: MatchedBy) -> dict[str, SignalMatch]:
    return {key: _entry(b, signal, key) for key, b in building.items()}


def _port_key(chassis_id: str, port_id: str) -> str:
    # Control characters never occur in a validated id: the join is unambiguous.
    return chassis_id + "\x1f" + port_id


class AccountDirectory:
    """One account's locations and groups, compiled for lookups by every signal.

    A snapshot is immutable once built; a directory change builds a new one.
    """

    __slots__ = (
        "_all_key",
        "_bssids",
        "_by_name",
        "_chassis",
        "_ports",
        "_v4",
        "_v6",
        "account_id",
        "locations",
        "locations_with_groups",
        "version",
    )

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
        self._by_name: tuple[Location, ...] | None = None
        self._all_key: str | None = None
        self._v4 = _Table(32)
        self._v6 = _Table(128)
        bssids: dict[str, _Building] = {}
        ports: dict[str, _Building] = {}
        chassis: dict[str, _Building] = {}
        with_groups: set[str] = set()
        for group in ip_groups:
            # A locating group not tied to a location is ignored entirely, so it can
            # never shadow a less specific network that does lead to a location. A
            # non-locating group needs no location: it says "this tells nothing".
            if group.locating and (
                group.location_id is None or group.location_id not in self.locations
            ):
                continue
            for net in group.networks:
                (self._v4 if net.version == 4 else self._v6).add(net, group)
            for bssid in group.bssids:
                bssids.setdefault(bssid, []).append(group)
            for sw in group.switches:
                if sw.port_id is None:
                    chassis.setdefault(sw.chassis_id, []).append(group)
                else:
                    ports.setdefault(_port_key(sw.chassis_id, sw.port_id), []).append(group)
            if group.locating and (group.networks or group.bssids or group.switches):
                assert group.location_id is not None  # noqa: S101  checked above
                with_groups.add(group.location_id)
        self._v4.freeze()
        self._v6.freeze()
        self._bssids = _compile(bssids, MatchedBy.BSSID)
        self._ports = _compile(ports, MatchedBy.SWITCH_PORT)
        self._chassis = _compile(chassis, MatchedBy.SWITCH)
        self.locations_with_groups: frozenset[str] = frozenset(with_groups)

    def match(self, ip: IPAddress) -> SignalMatch | None:
        """Locations reached through the longest prefix that contains ``ip``."""
        ip = normalize_ip(ip)
        table = self._v4 if ip.version == 4 else self._v6
        return table.lookup(int(ip))

    def match_bssid(self, bssid: str) -> SignalMatch | None:
        """The exact BSSID first, then its wildcard pattern (the more specific wins)."""
        for key in bssid_candidates(bssid):
            hit = self._bssids.get(key)
            if hit is not None:
                return hit
        return None

    def match_port(self, chassis_id: str, port_id: str | None) -> SignalMatch | None:
        return None if port_id is None else self._ports.get(_port_key(chassis_id, port_id))

    def match_switch(self, chassis_id: str) -> SignalMatch | None:
        return self._chassis.get(chassis_id)

    def signals(
        self, ip: IPAddress, network: NetworkSignals | None
    ) -> list[tuple[MatchedBy, str, SignalMatch | None]]:
        """Every signal the session presents, highest precedence first, with what it
        matched: ``explain`` shows them all; :meth:`locate` stops at the first hit."""
        out: list[tuple[MatchedBy, str, SignalMatch | None]] = []
        if network is not None and network.bssid is not None:
            out.append((MatchedBy.BSSID, network.bssid, self.match_bssid(network.bssid)))
        if network is not None and network.chassis_id is not None:
            if network.port_id is not None:
                port = self.match_port(network.chassis_id, network.port_id)
                out.append((MatchedBy.SWITCH_PORT, f"{network.chassis_id} {network.port_id}", port))
            out.append(
                (MatchedBy.SWITCH, network.chassis_id, self.match_switch(network.chassis_id))
            )
        out.append((MatchedBy.IP, str(ip), self.match(ip)))
        return out

    def locate(self, ip: IPAddress, network: NetworkSignals | None = None) -> SignalMatch | None:
        """The highest-precedence signal that matches anything (docs/spec.md#signal-precedence):
        BSSID > switch port > switch > IP longest prefix."""
        if network is not None:
            if network.bssid is not None and self._bssids:
                hit = self.match_bssid(network.bssid)
                if hit is not None:
                    return hit
            if network.chassis_id is not None and (self._ports or self._chassis):
                hit = self.match_port(network.chassis_id, network.port_id)
                if hit is None:
                    hit = self.match_switch(network.chassis_id)
                if hit is not None:
                    return hit
        return self.match(ip)

    def sorted_locations(self, ids: Iterable[str] | None = None) -> tuple[Location, ...]:
        """By name, then id; every location (``None``) is sorted once per snapshot: an
        account of 20,000 locations would otherwise sort them at every check."""
        if ids is None:
            if self._by_name is None:
                self._by_name = _by_name(self.locations.values())
            return self._by_name
        return _by_name(self.locations[i] for i in ids)

    def all_locations_key(self) -> str:
        """The fingerprint's part for every location (:func:`recommended_key`), once per
        snapshot."""
        if self._all_key is None:
            self._all_key = recommended_key(self.locations)
        return self._all_key


def _by_name(locations: Iterable[Location]) -> tuple[Location, ...]:
    return tuple(sorted(locations, key=lambda loc: (loc.name, loc.location_id)))


def evaluate(
    directory: AccountDirectory | None,
    account: Account | None,
    user: User | None,
    ip: IPAddress,
    network: NetworkSignals | None = None,
    geo: GeoCheck | None = None,
    confirmed: UserConfirmed | None = None,
) -> Verdict:
    """docs/spec.md#what-a-check-decides steps 1-5 for one session, with the geolocation
    check when ``geo`` is given.

    ``confirmed``: the user's own confirmed networks (docs/spec.md#networks-a-user-confirmed);
    one decides only when no group of the account matched, and only for its own user.
    """
    if directory is None or account is None or user is None:
        return Verdict(Outcome.UNKNOWN_USER)
    if not effective_setting(account, user):
        return Verdict(Outcome.DISABLED)
    if not directory.locations:
        return Verdict(Outcome.NO_LOCATIONS)
    hit = directory.locate(ip, network)
    # A location id that names no location of the account is as unsafe as none at all.
    assigned = directory.locations.get(user.e911_location_id) if user.e911_location_id else None
    if hit is not None and not hit.locating:
        return Verdict(Outcome.UNDETERMINED, assigned_location=assigned, match=hit)
    matches = hit.location_ids if hit else frozenset()
    if not matches and confirmed is not None:
        entry = confirmed.lookup(user, ip, network)
        if entry is not None:
            decided = confirmed_verdict(directory.locations, assigned, entry)
            if decided is not None:
                return decided

    def mismatch_for(kind: RecommendationKind, ids: Iterable[str] | None) -> Verdict:
        by = hit.signal if hit is not None and kind is RecommendationKind.IP_GROUP_MATCH else None
        key = directory.all_locations_key() if ids is None else None
        return Verdict(
            Outcome.MISMATCH,
            assigned_location=assigned,
            recommendation=Recommendation(kind, directory.sorted_locations(ids), by, key),
            match=hit,
        )

    if assigned is None:
        if matches:
            return mismatch_for(RecommendationKind.IP_GROUP_MATCH, matches)
        return mismatch_for(RecommendationKind.ALL_LOCATIONS, None)
    if matches:
        if assigned.location_id in matches:
            return Verdict(Outcome.MATCH, assigned_location=assigned, match=hit)
        return mismatch_for(RecommendationKind.IP_GROUP_MATCH, matches)
    if assigned.location_id in directory.locations_with_groups:
        return mismatch_for(RecommendationKind.ALL_LOCATIONS, None)
    if geo is not None:
        return geolocate(directory.locations.values(), assigned, ip, geo)
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
    """docs/spec.md#what-a-check-decides step 5: never a second alert for an unchanged mismatch.

    An alert settled (a match, or undetermined) while the user's assigned location
    differs from the one it was raised against is resolved as ``location_updated``
    (the user fixed it); otherwise as ``location_matched`` (the user moved) or
    ``location_undetermined`` (nothing says they are elsewhere any more; we do not
    claim they moved). The reason comes from the stored state,
    not from how the daemon heard of the change, so a missed notice, a catch-up or a
    scheduled check all give the same answer. A mismatch that persists is still
    ``superseded``, a disabled user ``recommendations_disabled`` and a user gone from
    the directory ``user_unknown``: those say what the subscriber must do next.
    ``snoozed_fingerprints`` are mismatches the user dismissed recently.
    """
    outcome = verdict.outcome
    if outcome is Outcome.MISMATCH:
        return _mismatch(verdict, open_alert, snoozed_fingerprints)
    if open_alert is None:
        return KEEP
    if outcome is Outcome.UNKNOWN_USER:
        return AlertDecision(resolve=ResolveReason.USER_UNKNOWN)
    if outcome is Outcome.DISABLED:
        return AlertDecision(resolve=ResolveReason.RECOMMENDATIONS_DISABLED)
    if outcome is Outcome.NO_LOCATIONS:
        # The account lost every location: nobody moved and nobody fixed anything.
        return AlertDecision(resolve=ResolveReason.LOCATION_UNDETERMINED)
    assigned = verdict.assigned_location
    now_assigned = assigned.location_id if assigned is not None else None
    if open_alert.assigned_location_id != now_assigned:
        return AlertDecision(resolve=ResolveReason.LOCATION_UPDATED)
    if outcome is Outcome.MATCH:
        return AlertDecision(resolve=ResolveReason.LOCATION_MATCHED)
    return AlertDecision(resolve=ResolveReason.LOCATION_UNDETERMINED)


def _mismatch(
    verdict: Verdict, open_alert: OpenAlert | None, snoozed_fingerprints: frozenset[str]
) -> AlertDecision:
    fingerprint = verdict.fingerprint
    assert fingerprint is not None  # noqa: S101  a mismatch always carries a recommendation
    if open_alert is not None and open_alert.fingerprint == fingerprint:
        return KEEP
    resolve = None if open_alert is None else ResolveReason.SUPERSEDED
    if fingerprint in snoozed_fingerprints:
        return AlertDecision(resolve=resolve, snoozed=True)
    return AlertDecision(resolve=resolve, raise_fingerprint=fingerprint)
