"""Networks a user confirmed, the pure step (docs/spec.md#networks-a-user-confirmed): what a
confirmed entry decides, where in the order of a check, for whom, and what may be learned."""

from __future__ import annotations

import ipaddress
import json

import pytest

from e911d.consumers.wire import decode_directory_event
from e911d.daemon.core.confirmed_network import (
    KeyPrefixes,
    UserConfirmed,
    learned_key,
    session_keys,
)
from e911d.daemon.core.evaluation import AccountDirectory, evaluate
from e911d.daemon.core.events import Invalid, InvalidReason, UserLocationChanged
from e911d.daemon.core.geo import GeoCheck, GeoPoint
from e911d.daemon.core.model import (
    Account,
    ConfirmedNetwork,
    IpGroup,
    Location,
    MatchedBy,
    Outcome,
    RecommendationKind,
    User,
    Verdict,
)
from e911d.daemon.core.network import NetworkSignals, SwitchRef
from e911d.daemon.core.network_key import (
    NetworkKey,
    NetworkKeyKind,
    bssid_key,
    ip_prefix_key,
    switch_port_key,
)

HQ = Location("hq", "Headquarters", (50.0, 8.0))
HOME = Location("home", "Home office", (50.1, 8.1))
CABIN = Location("cabin", "Cabin", (47.0, 11.0))
HQ_NET = IpGroup("g-hq", "HQ LAN", "hq", (ipaddress.ip_network("203.0.113.0/24"),))
VPN = IpGroup("g-vpn", "VPN", None, (ipaddress.ip_network("192.0.2.0/24"),), locating=False)
AP = "f06e0bc20321"
HOME_IP = ipaddress.ip_address("198.51.100.23")
VPN_IP = ipaddress.ip_address("192.0.2.9")
HQ_IP = ipaddress.ip_address("203.0.113.5")


def directory(*groups: IpGroup) -> AccountDirectory:
    return AccountDirectory("acme", (HQ, HOME, CABIN), groups or (HQ_NET, VPN))


def entry(key: NetworkKey, location_id: str = "home", user_id: str = "alice") -> ConfirmedNetwork:
    return ConfirmedNetwork("acme", user_id, key, location_id)


def mine(*entries: ConfirmedNetwork, user_id: str = "alice") -> UserConfirmed:
    return UserConfirmed("acme", user_id, entries)


HOME_PREFIX = ip_prefix_key(HOME_IP)


def check(
    assigned: str | None,
    confirmed: UserConfirmed | None,
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = HOME_IP,
    network: NetworkSignals | None = None,
    user_id: str = "alice",
    geo: GeoCheck | None = None,
    d: AccountDirectory | None = None,
) -> Verdict:
    return evaluate(
        d or directory(),
        Account("acme", True),
        User("acme", user_id, True, assigned),
        ip,
        network,
        geo,
        confirmed=confirmed,
    )


def test_the_confirmed_location_assigned_is_a_match() -> None:
    v = check("home", mine(entry(HOME_PREFIX)))
    assert v.outcome is Outcome.MATCH
    assert v.matched_by is MatchedBy.USER_CONFIRMED
    assert v.confirmed == entry(HOME_PREFIX)
    assert v.recommendation is None


def test_another_assigned_location_is_a_user_confirmed_mismatch_of_that_one_location() -> None:
    v = check("hq", mine(entry(HOME_PREFIX)))
    assert v.outcome is Outcome.MISMATCH
    assert v.recommendation is not None
    assert v.recommendation.kind is RecommendationKind.USER_CONFIRMED
    assert v.recommendation.locations == (HOME,)
    assert v.recommendation.matched_by is MatchedBy.USER_CONFIRMED
    assert v.matched_by is MatchedBy.USER_CONFIRMED
    assert v.matched_ip_groups == ()  # no group located the session
    assert v.fingerprint is not None
    # Without the entry the same session is offered every location (HQ has a network).
    plain = check("hq", None)
    assert plain.recommendation is not None
    assert plain.recommendation.kind is RecommendationKind.ALL_LOCATIONS


def test_no_assigned_location_recommends_the_confirmed_one() -> None:
    v = check(None, mine(entry(HOME_PREFIX)))
    assert v.outcome is Outcome.MISMATCH
    assert v.recommendation is not None
    assert v.recommendation.kind is RecommendationKind.USER_CONFIRMED
    assert v.recommendation.locations == (HOME,)


def test_the_administrators_groups_decide_before_a_confirmed_entry() -> None:
    hq_prefix = ip_prefix_key(HQ_IP)
    v = check("home", mine(entry(hq_prefix)), ip=HQ_IP)
    assert v.outcome is Outcome.MISMATCH
    assert v.recommendation is not None
    assert v.recommendation.kind is RecommendationKind.IP_GROUP_MATCH
    assert v.matched_by is MatchedBy.IP
    assert v.confirmed is None


def test_a_non_locating_group_still_wins_over_a_confirmed_entry() -> None:
    v = check("hq", mine(entry(ip_prefix_key(VPN_IP))), ip=VPN_IP)
    assert v.outcome is Outcome.UNDETERMINED
    assert v.confirmed is None
    assert v.recommendation is None


def test_a_confirmed_entry_decides_before_geolocation() -> None:
    far = GeoCheck(lambda _ip: GeoPoint(-45.0, 170.0, accuracy_km=5.0), max_distance_km=50.0)
    d = directory(HQ_NET)
    assert check("cabin", None, geo=far, d=d).matched_by is MatchedBy.GEOIP
    v = check("cabin", mine(entry(HOME_PREFIX, "cabin")), geo=far, d=d)
    assert v.outcome is Outcome.MATCH
    assert v.geo is None
    assert v.matched_by is MatchedBy.USER_CONFIRMED


def test_entries_are_looked_up_bssid_then_switch_port_then_ip_prefix() -> None:
    network = NetworkSignals(AP, "core-sw-1", "gi1/0/7")
    by_bssid = entry(bssid_key(AP), "home")
    by_port = entry(switch_port_key("core-sw-1", "gi1/0/7"), "cabin")
    by_prefix = entry(HOME_PREFIX, "hq")
    every = mine(by_prefix, by_port, by_bssid)
    assert check(None, every, network=network).confirmed == by_bssid
    without_ap = NetworkSignals(None, "core-sw-1", "gi1/0/7")
    assert check(None, every, network=without_ap).confirmed == by_port
    assert check(None, every, network=None).confirmed == by_prefix
    # A BSSID nobody confirmed falls through to the next key.
    other_ap = NetworkSignals("f06e0bc20399", "core-sw-1", "gi1/0/7")
    assert check(None, every, network=other_ap).confirmed == by_port


def test_another_users_entries_never_decide() -> None:
    bob = mine(entry(HOME_PREFIX, user_id="bob"), user_id="bob")
    # Bob's entries checked for Alice: nothing of Bob's is used.
    v = check("hq", bob, user_id="alice")
    assert v.confirmed is None
    assert v.recommendation is not None
    assert v.recommendation.kind is RecommendationKind.ALL_LOCATIONS
    # Entries of another user or account mixed into Alice's (a corrupt read) are dropped.
    mixed = UserConfirmed(
        "acme",
        "alice",
        [
            entry(HOME_PREFIX, user_id="bob"),
            ConfirmedNetwork("other", "alice", HOME_PREFIX, "home"),
        ],
    )
    assert len(mixed) == 0
    assert check("hq", mixed).confirmed is None


def test_the_same_user_id_in_another_account_is_another_user() -> None:
    theirs = UserConfirmed(
        "other", "alice", [ConfirmedNetwork("other", "alice", HOME_PREFIX, "home")]
    )
    assert check("hq", theirs).confirmed is None


def test_an_entry_whose_location_is_gone_does_not_count() -> None:
    v = check("hq", mine(entry(HOME_PREFIX, "demolished")))
    assert v.confirmed is None
    assert v.recommendation is not None
    assert v.recommendation.kind is RecommendationKind.ALL_LOCATIONS


def test_the_prefix_width_is_the_configured_one() -> None:
    wide = UserConfirmed(
        "acme", "alice", [entry(ip_prefix_key(HOME_IP, 16))], KeyPrefixes(ipv4=16, ipv6=48)
    )
    neighbour = ipaddress.ip_address("198.51.7.1")  # same /16, another /24
    assert check("home", wide, ip=neighbour).outcome is Outcome.MATCH
    narrow = mine(entry(HOME_PREFIX))
    assert check("home", narrow, ip=neighbour).confirmed is None


def test_ipv6_sessions_are_keyed_by_their_56_and_mapped_ipv4_as_ipv4() -> None:
    v6 = ipaddress.ip_address("2001:db8:1234:5600::17")
    same_56 = ipaddress.ip_address("2001:db8:1234:56ff::1")
    key = session_keys(v6, None, KeyPrefixes())[-1]
    assert key == NetworkKey(NetworkKeyKind.IP_PREFIX, "2001:db8:1234:5600::/56")
    assert check("home", mine(entry(key)), ip=same_56).outcome is Outcome.MATCH
    mapped = ipaddress.ip_address("::ffff:198.51.100.99")
    assert check("home", mine(entry(HOME_PREFIX)), ip=mapped).outcome is Outcome.MATCH


# ---- what may be learned --------------------------------------------------------------


def test_nothing_is_learned_where_a_group_decides() -> None:
    d = directory()
    prefixes = KeyPrefixes()
    assert learned_key(d.locate(HQ_IP), HQ_IP, None, prefixes) is None  # locating
    assert learned_key(d.locate(VPN_IP), VPN_IP, None, prefixes) is None  # non-locating
    assert learned_key(d.locate(HOME_IP), HOME_IP, None, prefixes) == HOME_PREFIX


def test_the_most_specific_signal_is_the_key_learned() -> None:
    d = directory()
    prefixes = KeyPrefixes()
    network = NetworkSignals(AP, "core-sw-1", "gi1/0/7")
    assert learned_key(d.locate(HOME_IP, network), HOME_IP, network, prefixes) == bssid_key(AP)
    port_only = NetworkSignals(None, "core-sw-1", "gi1/0/7")
    assert learned_key(None, HOME_IP, port_only, prefixes) == switch_port_key(
        "core-sw-1", "gi1/0/7"
    )
    # A switch the administrator mapped (chassis) decides: nothing to learn there.
    mapped_switch = IpGroup("g-sw", "Switch", "hq", (), switches=(SwitchRef("core-sw-1"),))
    d2 = directory(HQ_NET, mapped_switch)
    assert learned_key(d2.locate(HOME_IP, port_only), HOME_IP, port_only, prefixes) is None


# ---- the wire: session_id of e911.user.location_changed ---------------------------------


def _event(data: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "e1",
            "source": "urn:test",
            "type": "e911.user.location_changed",
            "data": data,
        }
    ).encode()


BASE = {"account_id": "acme", "user_id": "alice", "e911_location_id": "home", "changed_via": "app"}


@pytest.mark.parametrize(
    ("extra", "session_id"),
    [({}, None), ({"session_id": None}, None), ({"session_id": "s-1"}, "s-1")],
)
def test_session_id_is_optional(extra: dict[str, object], session_id: str | None) -> None:
    decoded = decode_directory_event(_event({**BASE, **extra}), 1_000_000)
    assert not isinstance(decoded, Invalid)
    assert decoded.change == UserLocationChanged("acme", "alice", "home", "app", session_id)


@pytest.mark.parametrize(
    "bad",
    ["", "x" * 257, "s\x00", "s\n1", "\x7f", 17, 1.5, True, ["s-1"], {"id": "s-1"}],
)
def test_a_hostile_session_id_is_invalid_data(bad: object) -> None:
    decoded = decode_directory_event(_event({**BASE, "session_id": bad}), 1_000_000)
    assert isinstance(decoded, Invalid)
    assert decoded.reason is InvalidReason.INVALID_DATA
