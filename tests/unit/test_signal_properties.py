"""Properties of a check with network signals (docs/spec.md#what-a-check-decides, #network-signals),
against a slow reference.

The compiled :class:`AccountDirectory` answers a lookup with a few dict probes; the
reference below answers the same question the way docs/spec.md words it, by walking
every group of the account for every signal in precedence order. Directories and
sessions are drawn from tiny pools (two access points, two switches, a /22) so that
BSSIDs, wildcard patterns, ports and nested networks collide all the time, and a
session's signals are mostly values the directory itself holds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.daemon.core.evaluation import AccountDirectory, decide, evaluate
from e911d.daemon.core.geo import GeoCheck, GeoPoint
from e911d.daemon.core.model import (
    Account,
    IpGroup,
    Location,
    MatchedBy,
    OpenAlert,
    Outcome,
    RecommendationKind,
    ResolveReason,
    User,
    Verdict,
)
from e911d.daemon.core.network import NetworkSignals, SwitchRef

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

# ---- pools ----------------------------------------------------------------------------

# Two access points; each serves BSSIDs that differ in the last hex digit.
AP_PREFIXES = ("f06e0bc2032", "f06e0bc2033")
LAST_DIGITS = ("0", "f")
BSSIDS = tuple(p + d for p in AP_PREFIXES for d in LAST_DIGITS)
PATTERNS = tuple(p + "*" for p in AP_PREFIXES)
# A MAC chassis id and a named one (LLDP allows both), each with two ports.
CHASSIS = ("001122334455", "core-sw-1")
PORTS = ("gi1/0/1", "gi1/0/2")
_BASE = int(ipaddress.IPv4Address("10.0.0.0"))

# The far side of the world from every location below: geolocation, when it is
# consulted, always says "far away".
FAR = GeoPoint(-45.0, 170.0, accuracy_km=5.0)
GEO = GeoCheck(lambda _ip: FAR, max_distance_km=50.0)


@st.composite
def ipv4_networks(draw: st.DrawFn) -> ipaddress.IPv4Network:
    prefix = draw(st.sampled_from([0, 8, 16, 22, 24, 26, 28, 30, 32]))
    host = _BASE + draw(st.integers(0, 1023))
    return ipaddress.IPv4Network((host, prefix), strict=False)


addresses = st.builds(lambda n: ipaddress.IPv4Address(_BASE + n), st.integers(0, 1023))
switch_refs = st.builds(SwitchRef, st.sampled_from(CHASSIS), st.none() | st.sampled_from(PORTS))


@dataclass(frozen=True, slots=True)
class AccountData:
    account_id: str
    locations: tuple[Location, ...]
    groups: tuple[IpGroup, ...]

    @property
    def location_ids(self) -> list[str]:
        return [loc.location_id for loc in self.locations]


@st.composite
def account_data(draw: st.DrawFn, prefix: str) -> AccountData:
    names = st.sampled_from(["Alpha", "Beta", "Gamma"])  # duplicates on purpose
    coordinates = st.none() | st.tuples(st.floats(49.0, 51.0), st.floats(7.0, 9.0))
    locations = tuple(
        Location(f"{prefix}-loc{i}", draw(names), draw(coordinates))
        for i in range(draw(st.integers(0, 4)))
    )
    # Groups may be unbound or point to a location missing from this account.
    targets = st.sampled_from([*(loc.location_id for loc in locations), None, f"{prefix}-gone"])
    groups = tuple(
        IpGroup(
            f"{prefix}-g{i}",
            f"group {i}",
            draw(targets),
            tuple(draw(st.lists(ipv4_networks(), max_size=2))),
            bssids=tuple(draw(st.lists(st.sampled_from(BSSIDS + PATTERNS), max_size=2))),
            switches=tuple(draw(st.lists(switch_refs, max_size=2))),
            # Mostly locating: a non-locating group everywhere would hide the rest.
            locating=draw(st.sampled_from([True, True, True, False])),
        )
        for i in range(draw(st.integers(0, 6) | st.integers(3, 6)))
    )
    return AccountData(prefix, locations, groups)


@st.composite
def networks(draw: st.DrawFn, groups: Sequence[IpGroup]) -> NetworkSignals | None:
    """Mostly the directory's own values (a pattern's BSSIDs, a port's switch), else
    anything from the pools, or an access point and a switch nobody knows."""
    if draw(st.integers(0, 4)) == 0:
        return None
    own_bssids = sorted(
        {b[:11] + d for g in groups for b in g.bssids for d in LAST_DIGITS}
        | {b for g in groups for b in g.bssids if not b.endswith("*")}
    )
    own_switches = sorted({(s.chassis_id, s.port_id) for g in groups for s in g.switches}, key=str)
    bssid = draw(
        st.none()
        | st.sampled_from(BSSIDS)
        | st.just("f06e0bc20349")
        | (st.sampled_from(own_bssids) if own_bssids else st.nothing())
    )
    chassis, port = draw(
        st.tuples(st.sampled_from((*CHASSIS, "edge-sw-9")), st.none() | st.sampled_from(PORTS))
        | (st.sampled_from(own_switches) if own_switches else st.nothing())
        | st.just((None, None))
    )
    if chassis is not None and port is None and draw(st.booleans()):
        port = draw(st.sampled_from(PORTS))  # a chassis-only switch seen on some port
    return NetworkSignals(bssid, chassis, port if chassis is not None else None)


# ---- the reference ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decisive:
    """What the highest-precedence signal that matched anything matched."""

    signal: MatchedBy
    groups: frozenset[str]
    location_ids: frozenset[str]
    locating: bool


def _counted(groups: Sequence[IpGroup], known: set[str]) -> list[IpGroup]:
    """Groups a check may use: non-locating ones, and locating ones tied to a location."""
    return [g for g in groups if not g.locating or g.location_id in known]


def _level(signal: MatchedBy, hits: list[IpGroup]) -> Decisive | None:
    if not hits:
        return None
    return Decisive(
        signal,
        frozenset(g.ip_group_id for g in hits),
        frozenset(g.location_id for g in hits if g.locating and g.location_id is not None),
        all(g.locating for g in hits),
    )


def reference_locate(
    locations: Sequence[Location],
    groups: Sequence[IpGroup],
    address: ipaddress.IPv4Address,
    network: NetworkSignals | None,
) -> Decisive | None:
    usable = _counted(groups, {loc.location_id for loc in locations})
    levels: list[Decisive | None] = []
    if network is not None and network.bssid is not None:
        exact = [g for g in usable if network.bssid in g.bssids]
        pattern = network.bssid[:11] + "*"
        levels.append(_level(MatchedBy.BSSID, exact or [g for g in usable if pattern in g.bssids]))
    if network is not None and network.chassis_id is not None:
        if network.port_id is not None:
            port = SwitchRef(network.chassis_id, network.port_id)
            levels.append(_level(MatchedBy.SWITCH_PORT, [g for g in usable if port in g.switches]))
        whole = SwitchRef(network.chassis_id)
        levels.append(_level(MatchedBy.SWITCH, [g for g in usable if whole in g.switches]))
    by_prefix = [(n.prefixlen, g) for g in usable for n in g.networks if address in n]
    best = max((p for p, _ in by_prefix), default=None)
    levels.append(_level(MatchedBy.IP, [g for p, g in by_prefix if p == best]))
    return next((level for level in levels if level is not None), None)


def has_groups(locations: Sequence[Location], groups: Sequence[IpGroup], lid: str) -> bool:
    known = {loc.location_id for loc in locations}
    return any(
        g.locating
        and g.location_id == lid
        and lid in known
        and (g.networks or g.bssids or g.switches)
        for g in groups
    )


def recommended(verdict: Verdict) -> list[str]:
    assert verdict.recommendation is not None
    return [loc.location_id for loc in verdict.recommendation.locations]


def assigned_id(choice: int, mine: AccountData, theirs: AccountData) -> str | None:
    """None, one of mine, one of theirs (dangling here), or an id nobody has."""
    pool = [None, *mine.location_ids, *theirs.location_ids, "nowhere"]
    return pool[choice % len(pool)]


def settles(verdict: Verdict) -> None:
    """Applying a decision and deciding again from the resulting state changes nothing."""
    for open_fp in (None, "stale-fingerprint", verdict.fingerprint):
        for snoozed in (frozenset(), frozenset({verdict.fingerprint or "x"})):
            open_alert = None if open_fp is None else OpenAlert("al", open_fp, "mine-loc0")
            first = decide(verdict, open_alert, snoozed)
            if first.raise_fingerprint is not None:
                assigned = verdict.assigned_location
                state: OpenAlert | None = OpenAlert(
                    "al2", first.raise_fingerprint, assigned.location_id if assigned else None
                )
            elif first.resolve is not None:
                state = None
            else:
                state = open_alert
            assert decide(verdict, state, snoozed).changes_nothing


# ---- properties ---------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    mine=account_data("mine"),
    theirs=account_data("theirs"),
    address=addresses,
    data=st.data(),
    choice=st.integers(0, 20),
    account_on=st.booleans(),
    user_on=st.booleans(),
    with_geo=st.booleans(),
)
def test_property_the_highest_signal_that_matches_decides(
    mine: AccountData,
    theirs: AccountData,
    address: ipaddress.IPv4Address,
    data: st.DataObject,
    choice: int,
    account_on: bool,
    user_on: bool,
    with_geo: bool,
) -> None:
    # The other account's groups are mixed into this snapshot (a corrupt read): their
    # locations are not this account's, so only their non-locating groups can count.
    groups = (*mine.groups, *theirs.groups)
    network = data.draw(networks(groups))
    d = AccountDirectory("mine", mine.locations, groups)
    lid = assigned_id(choice, mine, theirs)
    user = User("mine", "u", user_on, lid)
    geo = GEO if with_geo else None
    verdict = evaluate(d, Account("mine", account_on), user, address, network, geo)
    settles(verdict)
    expected = reference_locate(mine.locations, groups, address, network)

    # The directory's own lookups agree with the reference whatever the toggles say.
    hit = d.locate(address, network)
    assert (hit is None) == (expected is None)
    if hit is not None and expected is not None:
        assert (hit.signal, frozenset(hit.group_ids)) == (expected.signal, expected.groups)
        assert (hit.location_ids, hit.locating) == (expected.location_ids, expected.locating)
    # explain's view lists every signal; the first that matched is the one that decided.
    shown = d.signals(address, network)
    assert shown[-1][0] is MatchedBy.IP
    assert next((m for _, _, m in shown if m is not None), None) == hit

    if not (account_on or user_on):
        assert verdict.outcome is Outcome.DISABLED
        return
    if not mine.locations:
        assert verdict.outcome is Outcome.NO_LOCATIONS
        assert verdict.recommendation is None
        return
    assigned = lid if lid in mine.location_ids else None
    assert verdict.assigned_location == (None if assigned is None else d.locations[assigned])

    if expected is not None:
        # (a) precedence: the deciding signal is the reference's, and so is what it matched.
        assert verdict.match is not None
        assert verdict.matched_by is expected.signal
        assert set(verdict.matched_ip_groups) == expected.groups
        if not expected.locating:
            assert verdict.outcome is Outcome.UNDETERMINED
        elif assigned in expected.location_ids:
            assert verdict.outcome is Outcome.MATCH
        else:
            assert verdict.outcome is Outcome.MISMATCH
            assert verdict.recommendation is not None
            assert verdict.recommendation.kind is RecommendationKind.IP_GROUP_MATCH
            assert verdict.recommendation.matched_by is expected.signal
            assert set(recommended(verdict)) == expected.location_ids
        return

    # Nothing matched: every signal fell through to "no match".
    assert verdict.matched_by in (None, MatchedBy.GEOIP)
    if assigned is None or has_groups(mine.locations, groups, assigned):
        assert verdict.outcome is Outcome.MISMATCH
        assert verdict.recommendation is not None
        assert verdict.recommendation.kind is RecommendationKind.ALL_LOCATIONS
        assert verdict.recommendation.matched_by is None
        assert set(recommended(verdict)) == set(mine.location_ids)
    elif with_geo and d.locations[assigned].coordinates is not None:
        assert verdict.outcome is Outcome.MISMATCH
        assert verdict.matched_by is MatchedBy.GEOIP
        assert verdict.recommendation is not None
        assert verdict.recommendation.kind is RecommendationKind.NEAREST_LOCATIONS
    else:
        assert verdict.outcome is Outcome.UNDETERMINED


@PROPERTY_SETTINGS
@given(
    mine=account_data("mine"),
    theirs=account_data("theirs"),
    address=addresses,
    data=st.data(),
    choice=st.integers(0, 20),
    with_geo=st.booleans(),
)
def test_property_no_recommendation_names_another_accounts_location(
    mine: AccountData,
    theirs: AccountData,
    address: ipaddress.IPv4Address,
    data: st.DataObject,
    choice: int,
    with_geo: bool,
) -> None:
    network = data.draw(networks((*mine.groups, *theirs.groups)))
    lid = assigned_id(choice, mine, theirs)
    geo = GEO if with_geo else None
    for me, other in ((mine, theirs), (theirs, mine)):
        # Each account's snapshot with the other's groups mixed in, both ways round.
        d = AccountDirectory(me.account_id, me.locations, (*me.groups, *other.groups))
        user = User(me.account_id, "u", True, lid)
        verdict = evaluate(d, Account(me.account_id, True), user, address, network, geo)
        named: set[str] = set()
        if verdict.recommendation is not None:
            named |= set(recommended(verdict))
        if verdict.match is not None:
            named |= verdict.match.location_ids
        if verdict.assigned_location is not None:
            named.add(verdict.assigned_location.location_id)
        assert named <= set(me.location_ids)
        assert not named & set(other.location_ids)


@PROPERTY_SETTINGS
@given(
    mine=account_data("mine"),
    address=addresses,
    data=st.data(),
    choice=st.integers(0, 20),
    with_geo=st.booleans(),
    vpn_level=st.sampled_from(["bssid", "port", "switch", "ip"]),
    open_for=st.sampled_from([None, "mine-loc0", "mine-loc1"]),
)
def test_property_a_non_locating_group_that_decides_never_alerts(
    mine: AccountData,
    address: ipaddress.IPv4Address,
    data: st.DataObject,
    choice: int,
    with_geo: bool,
    vpn_level: str,
    open_for: str | None,
) -> None:
    network = data.draw(networks(mine.groups))
    # A non-locating group that matches the session at one level, beside locating
    # groups that may match at the same level (tie: non-locating wins) or lower ones.
    vpn = _vpn_group(network or NetworkSignals(), vpn_level, address, draw_location(mine, choice))
    groups = (*mine.groups, vpn)
    d = AccountDirectory("mine", mine.locations, groups)
    lid = assigned_id(choice, mine, mine)
    user = User("mine", "u", True, lid)
    verdict = evaluate(d, Account("mine", True), user, address, network, GEO if with_geo else None)
    expected = reference_locate(mine.locations, groups, address, network)
    if not mine.locations:
        assert verdict.outcome is Outcome.NO_LOCATIONS
        return
    assert expected is not None  # the VPN group matches at least at its own level
    if expected.locating:
        assert "vpn" not in expected.groups  # a higher signal matched locating groups only
        return
    assert verdict.outcome is Outcome.UNDETERMINED
    assert verdict.recommendation is None
    assert verdict.fingerprint is None
    assert verdict.geo is None  # geolocation is never consulted for a non-locating win
    # Whichever non-locating group decided (the VPN, or one of the account's own).
    assert set(verdict.matched_ip_groups) == expected.groups
    for open_alert in (None, *(OpenAlert("al", fp, open_for) for fp in ("fp-1", "fp-2"))):
        for snoozed in (frozenset(), frozenset({"fp-1"})):
            decision = decide(verdict, open_alert, snoozed)
            assert decision.raise_fingerprint is None
            if open_alert is None:
                assert decision.changes_nothing
            else:
                now = verdict.assigned_location
                moved = open_alert.assigned_location_id != (now.location_id if now else None)
                assert decision.resolve is (
                    ResolveReason.LOCATION_UPDATED if moved else ResolveReason.LOCATION_UNDETERMINED
                )
    settles(verdict)


def draw_location(data: AccountData, choice: int) -> str | None:
    """A non-locating group needs no location, but may name one: it still never locates."""
    pool = [None, *data.location_ids]
    return pool[choice % len(pool)]


def _vpn_group(
    net: NetworkSignals, level: str, address: ipaddress.IPv4Address, location_id: str | None
) -> IpGroup:
    """A non-locating group matching the session at ``level`` (at its IP when the
    session presents no such signal)."""
    bssids: tuple[str, ...] = ()
    switches: tuple[SwitchRef, ...] = ()
    networks: tuple[ipaddress.IPv4Network, ...] = ()
    if level == "bssid" and net.bssid is not None:
        bssids = (net.bssid,)
    elif level == "port" and net.chassis_id is not None and net.port_id is not None:
        switches = (SwitchRef(net.chassis_id, net.port_id),)
    elif level == "switch" and net.chassis_id is not None:
        switches = (SwitchRef(net.chassis_id),)
    else:
        networks = (ipaddress.IPv4Network((int(address), 32)),)
    return IpGroup("vpn", "VPN egress", location_id, networks, bssids, switches, locating=False)


def test_reference_agrees_on_a_hand_written_case() -> None:
    """The reference itself, on a case worked out by hand, so it cannot drift with the code."""
    hq, home = Location("hq", "HQ"), Location("home", "Home")
    groups = (
        IpGroup("lan", "LAN", "hq", (ipaddress.IPv4Network("10.0.0.0/24"),)),
        IpGroup("ap", "AP", "home", (), bssids=("f06e0bc2032*",)),
        IpGroup("ap-exact", "AP", "hq", (), bssids=("f06e0bc20321",)),
        IpGroup("vpn", "VPN", None, (), switches=(SwitchRef("core-sw-1"),), locating=False),
    )
    at = ipaddress.IPv4Address("10.0.0.5")
    exact = reference_locate((hq, home), groups, at, NetworkSignals("f06e0bc20321"))
    assert exact == Decisive(MatchedBy.BSSID, frozenset({"ap-exact"}), frozenset({"hq"}), True)
    wild = reference_locate((hq, home), groups, at, NetworkSignals("f06e0bc2032f"))
    assert wild == Decisive(MatchedBy.BSSID, frozenset({"ap"}), frozenset({"home"}), True)
    vpn = reference_locate((hq, home), groups, at, NetworkSignals("f06e0bc20349", "core-sw-1"))
    assert vpn == Decisive(MatchedBy.SWITCH, frozenset({"vpn"}), frozenset(), False)
    ip_only = reference_locate((hq, home), groups, at, None)
    assert ip_only == Decisive(MatchedBy.IP, frozenset({"lan"}), frozenset({"hq"}), True)
    d = AccountDirectory("a", (hq, home), groups)
    user = User("a", "u", True, "hq")
    assert evaluate(d, Account("a", True), user, at, NetworkSignals("f06e0bc2032f")).outcome is (
        Outcome.MISMATCH
    )
    assert evaluate(d, Account("a", True), user, at, NetworkSignals(None, "core-sw-1")).outcome is (
        Outcome.UNDETERMINED
    )
