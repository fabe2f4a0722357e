"""`e911d explain` reasoning, from literals (no database): it must tell a support
engineer the truth, i.e. exactly what the daemon's rules decide, and why."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.daemon.commands.explain import (
    ASSIGNED,
    DANGLING,
    NONE,
    UNKNOWN,
    ActiveSession,
    Explanation,
    InvalidIp,
    InvalidNetwork,
    build_explanation,
    parse_input_ip,
    parse_input_network,
    render_json,
    render_text,
    to_json,
)
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
    fingerprint_of,
)
from e911d.daemon.core.network import NetworkSignals, SwitchRef

HQ = Location("hq", "Headquarters")
HOME = Location("home", "Home office")
LAB = Location("lab", "Lab")  # no IP group
LOCATIONS = (HQ, HOME, LAB)

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
ELSEWHERE = "192.0.2.77"


def grp(
    gid: str,
    location_id: str | None,
    *items: str,
    bssids: tuple[str, ...] = (),
    switches: tuple[SwitchRef, ...] = (),
    locating: bool = True,
) -> IpGroup:
    nets = tuple(ipaddress.ip_network(i) for i in items)
    return IpGroup(gid, f"group {gid}", location_id, nets, bssids, switches, locating)


def entries(groups: Iterable[IpGroup]) -> dict[str, tuple[str, ...]]:
    """Each group's address entries as an event spelling every network as a CIDR gives them."""
    return {g.ip_group_id: tuple(str(n) for n in g.networks) for g in groups}


GROUPS = (
    grp("hq-net", "hq", "203.0.113.0/24"),
    grp("home-net", "home", "198.51.100.0/24"),
)


def explain(
    ip: str,
    *,
    account_on: bool | None = True,
    user_on: bool | None = False,
    location_id: str | None = "hq",
    locations: Iterable[Location] = LOCATIONS,
    groups: Iterable[IpGroup] = GROUPS,
    addresses: Mapping[str, tuple[str, ...]] | None = None,
    sessions: Iterable[ActiveSession] = (),
    network: NetworkSignals | None = None,
    geo: GeoCheck | None = None,
) -> Explanation:
    groups = tuple(groups)
    return build_explanation(
        user_id="u1",
        ip=parse_input_ip(ip),
        account=None if account_on is None else Account("acme", account_on),
        user=None if user_on is None else User("acme", "u1", user_on, location_id),
        directory=AccountDirectory("acme", locations, groups),  # as the loader builds it
        ip_groups=groups,
        addresses=entries(groups) if addresses is None else addresses,
        sessions=sessions,
        network=network,
        geo=geo,
    )


def rec_ids(ex: Explanation) -> list[str]:
    assert ex.verdict.recommendation is not None
    return [loc.location_id for loc in ex.verdict.recommendation.locations]


# ---- outcomes -------------------------------------------------------------------------


def test_match() -> None:
    ex = explain(HQ_IP)
    assert ex.outcome is Outcome.MATCH
    assert ex.fingerprint is None
    assert ex.verdict.recommendation is None
    assert ex.winner is not None and ex.winner.locations == (HQ,)
    assert ex.sentence == (
        "match: the IP is on the network of Headquarters (203.0.113.0/24, /24), "
        "which is the assigned location"
    )


def test_mismatch_ip_group_match() -> None:
    ex = explain(HOME_IP)
    assert ex.outcome is Outcome.MISMATCH
    assert ex.verdict.recommendation is not None
    assert ex.verdict.recommendation.kind is RecommendationKind.IP_GROUP_MATCH
    assert rec_ids(ex) == ["home"]
    assert ex.fingerprint == fingerprint_of("hq", ["home"])
    assert ex.sentence == (
        "mismatch: the IP is on the network of Home office (198.51.100.0/24, /24) "
        "but the assigned location is Headquarters"
    )


def test_mismatch_all_locations_ordered_by_name() -> None:
    ex = explain(ELSEWHERE)
    assert ex.outcome is Outcome.MISMATCH
    assert ex.verdict.recommendation is not None
    assert ex.verdict.recommendation.kind is RecommendationKind.ALL_LOCATIONS
    assert rec_ids(ex) == ["hq", "home", "lab"]  # Headquarters < Home office < Lab
    assert ex.fingerprint == fingerprint_of("hq", ["hq", "home", "lab"])
    assert ex.winner is None
    assert ex.containing_groups == ()
    assert "Headquarters has IP groups" in ex.sentence
    assert ex.sentence.startswith("mismatch: the IP is on none of the account's networks")


def test_mismatch_without_assigned_location() -> None:
    on_net = explain(HOME_IP, location_id=None)
    assert on_net.outcome is Outcome.MISMATCH
    assert on_net.assigned.status == NONE
    assert on_net.assigned.description == "none"
    assert rec_ids(on_net) == ["home"]
    assert on_net.fingerprint == fingerprint_of(None, ["home"])
    assert on_net.sentence.startswith("mismatch: the user has no assigned location; the IP is on")
    off_net = explain(ELSEWHERE, location_id=None)
    assert off_net.verdict.recommendation is not None
    assert off_net.verdict.recommendation.kind is RecommendationKind.ALL_LOCATIONS
    assert "every location is recommended" in off_net.sentence


def test_undetermined() -> None:
    ex = explain(ELSEWHERE, location_id="lab")
    assert ex.outcome is Outcome.UNDETERMINED
    assert ex.fingerprint is None
    assert ex.sentence.startswith("undetermined: the IP is on none of the account's networks")
    assert "Lab has no IP groups" in ex.sentence


def test_disabled() -> None:
    ex = explain(HOME_IP, account_on=False, user_on=False)
    assert ex.outcome is Outcome.DISABLED
    assert ex.fingerprint is None
    assert ex.verdict.recommendation is None
    assert ex.sentence.startswith("disabled: recommendations are off for this user")
    # The network facts are still shown: support can see what would happen if enabled.
    assert ex.winner is not None and ex.winner.locations == (HOME,)


def test_unknown_user_and_unknown_account() -> None:
    no_user = explain(HOME_IP, user_on=None)
    assert no_user.outcome is Outcome.UNKNOWN_USER
    assert no_user.effective.enabled is None
    assert no_user.effective.reason == "unknown: the user is not in the directory"
    assert no_user.assigned.status == UNKNOWN
    assert no_user.sentence.startswith("unknown_user: the user is not in the directory")
    no_account = explain(HOME_IP, account_on=None)
    assert no_account.outcome is Outcome.UNKNOWN_USER
    assert no_account.effective.reason == "unknown: the account is not in the directory"
    assert no_account.sentence.startswith("unknown_user: the account is not in the directory")
    assert no_account.fingerprint is None
    data = to_json(no_account)
    assert data["account"] == {"account_id": "acme", "known": False, "e911_recommendations": None}
    assert data["user"]["known"] is True


# ---- the effective setting: account overrides user -----------------------------------


@pytest.mark.parametrize(
    ("account_on", "user_on", "enabled", "reason"),
    [
        (True, False, True, "on: the account toggle is on and overrides the user's own (off)"),
        (True, True, True, "on: the account toggle is on and overrides the user's own (on)"),
        (False, True, True, "on: the account toggle is off; the user's own toggle is on"),
        (
            False,
            False,
            False,
            "off: the account toggle is off, so the user's own toggle decides (off)",
        ),
    ],
)
def test_effective_setting_reasoning(
    account_on: bool, user_on: bool, enabled: bool, reason: str
) -> None:
    ex = explain(HOME_IP, account_on=account_on, user_on=user_on)
    assert ex.effective.enabled is enabled
    assert ex.effective.reason == reason
    assert (ex.outcome is Outcome.DISABLED) is (not enabled)
    assert to_json(ex)["effective_setting"] == {"enabled": enabled, "reason": reason}
    assert f"Setting      {reason}" in render_text(ex)


# ---- containing groups, the winner, ties, ignored groups -----------------------------


def test_every_containing_group_is_listed_most_specific_first_with_the_winner() -> None:
    groups = (
        grp("wide", "hq", "10.0.0.0/8"),
        grp("mid", "home", "10.1.0.0/16"),
        grp("narrow", "lab", "10.1.2.0/24", "172.16.0.0/12"),
        grp("other", "hq", "10.2.0.0/16"),  # does not contain the IP
    )
    ex = explain("10.1.2.3", groups=groups)
    listed = [(g.ip_group_id, g.prefix_len, str(g.network)) for g in ex.containing_groups]
    assert listed == [
        ("narrow", 24, "10.1.2.0/24"),
        ("mid", 16, "10.1.0.0/16"),
        ("wide", 8, "10.0.0.0/8"),
    ]
    assert [g.winner for g in ex.containing_groups] == [True, False, False]
    assert all(g.counted for g in ex.containing_groups)
    assert ex.winner is not None
    assert (ex.winner.prefix_len, str(ex.winner.network)) == (24, "10.1.2.0/24")
    assert ex.winner.ip_group_ids == ("narrow",)
    assert ex.winner.locations == (LAB,)
    assert rec_ids(ex) == ["lab"]
    assert ex.sentence == (
        "mismatch: the IP is on the network of Lab (10.1.2.0/24, /24) "
        "but the assigned location is Headquarters"
    )


def test_a_group_is_listed_once_with_its_most_specific_containing_network() -> None:
    ex = explain("10.1.2.3", groups=(grp("g", "home", "10.0.0.0/8", "10.1.0.0/16"),))
    assert [(g.ip_group_id, g.prefix_len) for g in ex.containing_groups] == [("g", 16)]


def test_ties_at_the_longest_prefix_lead_to_several_locations() -> None:
    groups = (
        grp("a", "home", "10.1.0.0/16"),
        grp("b", "lab", "10.1.0.0/16"),
        grp("c", "hq", "10.0.0.0/8"),
    )
    ex = explain("10.1.2.3", groups=groups)
    assert ex.winner is not None
    assert ex.winner.ip_group_ids == ("a", "b")
    assert ex.winner.locations == (HOME, LAB)  # by name
    assert [g.ip_group_id for g in ex.containing_groups if g.winner] == ["a", "b"]
    assert rec_ids(ex) == ["home", "lab"]
    assert "network of Home office and Lab (10.1.0.0/16, /16)" in ex.sentence
    assert "(a tie of 2 groups)" in render_text(ex)
    # A tie that includes the assigned location is a match.
    assert explain("10.1.2.3", groups=groups, location_id="lab").outcome is Outcome.MATCH


def test_groups_tied_to_no_location_or_a_missing_one_are_listed_but_ignored() -> None:
    groups = (
        grp("unbound", None, "198.51.100.0/28"),
        grp("dangling", "deleted", "198.51.100.0/25"),
        grp("home-net", "home", "198.51.100.0/24"),
    )
    ex = explain(HOME_IP, groups=groups)
    by_id = {g.ip_group_id: g for g in ex.containing_groups}
    assert [g.ip_group_id for g in ex.containing_groups] == ["unbound", "dangling", "home-net"]
    assert not by_id["unbound"].counted and not by_id["unbound"].winner
    assert by_id["unbound"].ignored_reason == "tied to no location: ignored by the rules"
    assert not by_id["dangling"].counted
    assert by_id["dangling"].ignored_reason == (
        "tied to location 'deleted', which does not exist: ignored by the rules"
    )
    assert by_id["home-net"].counted and by_id["home-net"].winner
    # The ignored, more specific networks do not shadow the counted one.
    assert ex.winner is not None and ex.winner.prefix_len == 24
    assert rec_ids(ex) == ["home"]
    text = render_text(ex)
    assert "tied to no location: ignored by the rules" in text
    assert "which does not exist: ignored by the rules" in text


def test_only_ignored_groups_contain_the_ip() -> None:
    ex = explain(ELSEWHERE, groups=(*GROUPS, grp("unbound", None, "192.0.2.0/24")))
    assert [g.ip_group_id for g in ex.containing_groups] == ["unbound"]
    assert ex.winner is None
    assert rec_ids(ex) == ["hq", "home", "lab"]
    assert "Winner       none: no counted IP group contains the IP" in render_text(ex)


def test_the_raw_address_entry_behind_a_network_is_named() -> None:
    group = IpGroup(
        "home-net",
        "Home",
        "home",
        (ipaddress.ip_network("192.0.2.1/32"), ipaddress.ip_network("198.51.100.0/24")),
    )
    ex = explain(
        HOME_IP,
        groups=(group,),
        addresses={"home-net": ("192.0.2.1", "198.51.100.0-198.51.100.255")},
    )
    assert ex.containing_groups[0].address_item == "198.51.100.0-198.51.100.255"
    assert "from address entry 198.51.100.0-198.51.100.255" in render_text(ex)
    assert to_json(ex)["containing_groups"][0]["address"] == "198.51.100.0-198.51.100.255"


def test_dangling_assigned_location_is_treated_as_none() -> None:
    ex = explain(HOME_IP, location_id="gone")
    assert ex.assigned.status == DANGLING
    assert ex.assigned.description == (
        "'gone' names no location of this account — treated as no location"
    )
    assert ex.outcome is Outcome.MISMATCH
    assert ex.verdict.assigned_location is None
    assert ex.fingerprint == fingerprint_of(None, ["home"])
    assert "assigned location 'gone' names no location of this account" in ex.sentence
    assert explain(HQ_IP, location_id="hq").assigned.status == ASSIGNED


# ---- the IP ---------------------------------------------------------------------------


def test_ipv4_mapped_input_is_checked_as_ipv4_and_says_so() -> None:
    ex = explain("::ffff:198.51.100.7")
    assert str(ex.ip.address) == HOME_IP
    assert ex.ip.ipv4_mapped is True
    assert to_json(ex)["ip"] == {
        "input": "::ffff:198.51.100.7",
        "normalized": HOME_IP,
        "ipv4_mapped": True,
    }
    assert "an IPv4-mapped IPv6 address, checked as IPv4" in render_text(ex)
    assert rec_ids(ex) == ["home"]
    assert explain(HOME_IP).ip.ipv4_mapped is False
    assert explain("2001:db8::1").ip.ipv4_mapped is False


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("010.0.0.1", "leading zeros"),
        ("fe80::1%eth0", "zone ids"),
        ("198.51.100.0/24", "not a network"),
        (" 198.51.100.7", "whitespace"),
        ("", "empty"),
        ("not-an-ip", "expected an IPv4"),
    ],
)
def test_invalid_ip_is_refused_naming_the_value(text: str, hint: str) -> None:
    with pytest.raises(InvalidIp) as info:
        parse_input_ip(text)
    assert repr(text) in str(info.value)
    assert hint in str(info.value)


# ---- rendering ------------------------------------------------------------------------


def test_json_shape_is_stable() -> None:
    t = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    fp = fingerprint_of("hq", ["home"])
    ex = explain(
        HOME_IP,
        sessions=[
            ActiveSession("s1", HOME_IP, t, "a1", fp, t),
            ActiveSession("s2", "203.0.113.9", t),
        ],
    )
    data = json.loads(render_json(ex))
    assert list(data) == [
        "account",
        "user",
        "effective_setting",
        "assigned_location",
        "ip",
        "containing_groups",
        "winner",
        "outcome",
        "recommendation",
        "fingerprint",
        "explanation",
        "sessions",
        "signals",
        "matched_by",
        "geo",
        "confirmed",
        "confirmed_networks",
    ]
    assert data["confirmed"] is None
    assert data["confirmed_networks"] == 0
    assert data["outcome"] == "mismatch"
    assert data["matched_by"] == "ip"
    assert data["geo"] is None
    assert data["signals"] == [
        {
            "signal": "ip",
            "value": HOME_IP,
            "matched": True,
            "key": "198.51.100.0/24",
            "ip_group_ids": ["home-net"],
            "location_ids": ["home"],
            "locating": True,
            "decided": True,
        }
    ]
    assert data["containing_groups"][0]["locating"] is True
    assert data["recommendation"] == {
        "kind": "ip_group_match",
        "locations": [{"location_id": "home", "name": "Home office"}],
    }
    assert data["fingerprint"] == fp
    assert data["winner"] == {
        "prefix_len": 24,
        "network": "198.51.100.0/24",
        "ip_group_ids": ["home-net"],
        "locations": [{"location_id": "home", "name": "Home office"}],
        "locating": True,
    }
    assert data["assigned_location"]["status"] == "assigned"
    assert data["sessions"][0] == {
        "session_id": "s1",
        "ip": HOME_IP,
        "same_ip": True,
        "logged_in_at": "2026-11-26T09:00:00Z",
        "open_alert": {
            "alert_id": "a1",
            "fingerprint": fp,
            "raised_at": "2026-11-26T09:00:00Z",
            "same_fingerprint": True,
        },
        "snoozed_until": None,
    }
    assert data["sessions"][1]["open_alert"] is None
    assert data["sessions"][1]["same_ip"] is False


def test_text_names_every_part() -> None:
    t = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    fp = fingerprint_of("hq", ["home"])
    text = render_text(explain(HOME_IP, sessions=[ActiveSession("s1", HOME_IP, t, "a1", fp, t)]))
    assert "Account      acme: account toggle on" in text
    assert "User         u1: own toggle off, assigned location id hq" in text
    assert "Assigned     hq (Headquarters)" in text
    assert "Outcome      mismatch" in text
    assert "Recommended  ip_group_match: Home office (home)" in text
    assert f"Fingerprint  {fp}" in text
    assert "Why          mismatch: the IP is on the network of Home office" in text
    assert "s1  ip 198.51.100.7 (this IP)" in text
    assert "open alert a1 (same fingerprint as above)" in text


# ---- network signals (docs/spec.md#signal-precedence)
# -----------------------------------------------------

AP = "F0-6E-0B-C2-03-21"  # as a client might send it
SWITCH = "00:1B:54:AA:BB:CC"
SIGNAL_GROUPS = (
    *GROUPS,
    grp("ap-home", "home", bssids=("f06e0bc2032*",)),
    grp("desk-12", "home", switches=(SwitchRef("001b54aabbcc", "gi1/0/12"),)),
    grp("floor-switch", "lab", switches=(SwitchRef("001b54aabbcc"),)),
)


def net(
    bssid: str | None = None, chassis: str | None = None, port: str | None = None
) -> NetworkSignals | None:
    return parse_input_network(bssid, chassis, port)


def rows(ex: Explanation) -> list[tuple[str, bool, bool]]:
    return [(str(r.signal), r.matched, r.decided) for r in ex.signals]


def test_the_access_point_decides_over_the_ip() -> None:
    ex = explain(HQ_IP, groups=SIGNAL_GROUPS, network=net(AP, SWITCH, "Gi1/0/12"))
    assert ex.outcome is Outcome.MISMATCH
    assert ex.verdict.matched_by is MatchedBy.BSSID
    assert rec_ids(ex) == ["home"]
    # Every presented signal is listed, and each one that matched says so.
    assert rows(ex) == [
        ("bssid", True, True),
        ("switch_port", True, False),
        ("switch", True, False),
        ("ip", True, False),
    ]
    bssid = ex.signals[0]
    assert (bssid.value, bssid.key) == ("f0:6e:0b:c2:03:21", "f0:6e:0b:c2:03:2*")
    assert bssid.ip_group_ids == ("ap-home",) and bssid.locations == (HOME,)
    assert ex.sentence == (
        "mismatch: the client's access point f0:6e:0b:c2:03:21 belongs to Home office "
        "(through the pattern f0:6e:0b:c2:03:2*) but the assigned location is Headquarters"
    )
    # The IP's own winner is still shown, but said not to be the one that decided.
    assert ex.winner is not None and ex.winner.locations == (HQ,)
    text = render_text(ex)
    assert (
        "  bssid        f0:6e:0b:c2:03:21  matched f0:6e:0b:c2:03:2*: ap-home "
        "-> Home office (home)  <- decided"
    ) in text
    assert "(not used: the bssid signal decided)" in text
    assert "Matched by   bssid" in text


def test_the_switch_port_decides_over_the_switch_and_the_ip() -> None:
    ex = explain(HQ_IP, groups=SIGNAL_GROUPS, network=net(None, SWITCH, " GI1/0/12 "))
    assert rows(ex) == [("switch_port", True, True), ("switch", True, False), ("ip", True, False)]
    assert ex.verdict.matched_by is MatchedBy.SWITCH_PORT
    assert rec_ids(ex) == ["home"]
    assert ex.signals[0].value == "00:1b:54:aa:bb:cc gi1/0/12"
    assert ex.sentence == (
        "mismatch: the client's switch port gi1/0/12 on 00:1b:54:aa:bb:cc belongs to "
        "Home office but the assigned location is Headquarters"
    )
    data = to_json(ex)
    assert data["matched_by"] == "switch_port"
    assert data["signals"][1] == {
        "signal": "switch",
        "value": "00:1b:54:aa:bb:cc",
        "matched": True,
        "key": "00:1b:54:aa:bb:cc",
        "ip_group_ids": ["floor-switch"],
        "location_ids": ["lab"],
        "locating": True,
        "decided": False,
    }


def test_the_switch_decides_when_its_port_matches_nothing() -> None:
    ex = explain(
        HQ_IP, groups=SIGNAL_GROUPS, network=net(None, SWITCH, "Gi1/0/13"), location_id="lab"
    )
    assert rows(ex) == [("switch_port", False, False), ("switch", True, True), ("ip", True, False)]
    assert ex.outcome is Outcome.MATCH
    assert ex.verdict.matched_by is MatchedBy.SWITCH
    assert ex.sentence == (
        "match: the client's switch 00:1b:54:aa:bb:cc belongs to Lab, "
        "which is the assigned location"
    )
    assert "  switch_port  00:1b:54:aa:bb:cc gi1/0/13  matched nothing" in render_text(ex)


def test_a_signal_that_matches_nothing_falls_through_to_the_ip() -> None:
    ex = explain(HOME_IP, groups=SIGNAL_GROUPS, network=net("f0:6e:0b:c2:04:21"))
    assert rows(ex) == [("bssid", False, False), ("ip", True, True)]
    assert ex.verdict.matched_by is MatchedBy.IP
    assert ex.signals[0].key == "" and to_json(ex)["signals"][0]["key"] is None
    assert ex.sentence == (
        "mismatch: the IP is on the network of Home office (198.51.100.0/24, /24) "
        "but the assigned location is Headquarters"
    )


def test_when_no_signal_matches_every_one_is_named() -> None:
    ex = explain(ELSEWHERE, groups=SIGNAL_GROUPS, network=net("f0:6e:0b:c2:04:21", "sw-9", "1"))
    assert rows(ex) == [
        ("bssid", False, False),
        ("switch_port", False, False),
        ("switch", False, False),
        ("ip", False, False),
    ]
    assert ex.verdict.matched_by is None and to_json(ex)["matched_by"] is None
    assert rec_ids(ex) == ["hq", "home", "lab"]
    assert ex.sentence.startswith(
        "mismatch: none of the signals (access point f0:6e:0b:c2:04:21, switch port 1 on sw-9, "
        "switch sw-9, IP 192.0.2.77) matches the account's IP groups, but Headquarters has"
    )


# ---- non-locating networks (docs/spec.md#non-locating-networks), accounts without locations
# -------------------

VPN = grp("vpn-egress", None, "192.0.2.0/24", locating=False)


def test_a_non_locating_network_that_decides_gives_undetermined() -> None:
    ex = explain(ELSEWHERE, groups=(*GROUPS, VPN))
    assert ex.outcome is Outcome.UNDETERMINED
    assert ex.fingerprint is None
    assert ex.verdict.matched_by is MatchedBy.IP
    assert ex.sentence == (
        "undetermined: the IP's network 192.0.2.0/24 is a non-locating network (group "
        "vpn-egress: a VPN egress, a carrier NAT or the like says nothing about where the "
        "user is): no alert (an open one is resolved: location_updated if the assigned "
        "location changed since it was raised, else location_undetermined)"
    )
    # A non-locating group needs no location: it counts, it is not "ignored".
    (g,) = ex.containing_groups
    assert g.counted and g.winner and not g.locating and g.ignored_reason is None
    assert ex.signals[0].locating is False and ex.signals[0].decided
    text = render_text(ex)
    assert "vpn-egress (group vpn-egress) -> non-locating  <- winner" in text
    assert "matched 192.0.2.0/24: vpn-egress (non-locating)  <- decided" in text
    assert "Winner       /24 192.0.2.0/24 -> non-locating" in text
    assert to_json(ex)["winner"]["locating"] is False


def test_a_non_locating_access_point_beats_a_locating_ip_and_wins_a_tie() -> None:
    guest = grp("guest-wifi", None, bssids=("f06e0bc20321",), locating=False)
    ap = grp("ap-home", "home", bssids=("f06e0bc20321",))
    ex = explain(HOME_IP, groups=(*GROUPS, guest, ap), network=net(AP))
    assert ex.outcome is Outcome.UNDETERMINED
    assert ex.verdict.matched_by is MatchedBy.BSSID
    assert ex.signals[0].ip_group_ids == ("ap-home", "guest-wifi")
    assert ex.sentence.startswith(
        "undetermined: the client's access point f0:6e:0b:c2:03:21 is a non-locating network "
        "(group ap-home, guest-wifi: "
    )
    assert "it ties with a locating group of Home office at the same level" in ex.sentence


def test_an_account_without_locations() -> None:
    ex = explain(HOME_IP, locations=(), location_id=None)
    assert ex.outcome is Outcome.NO_LOCATIONS
    assert ex.fingerprint is None and ex.verdict.recommendation is None
    assert ex.sentence.startswith("no_locations: the account has no locations at all")
    assert "location_undetermined" in ex.sentence
    assert to_json(ex)["outcome"] == "no_locations"


# ---- the network input ------------------------------------------------------------------


def test_network_input_is_normalised_like_a_session_event() -> None:
    assert parse_input_network("F0-6E-0B-C2-03-21", " Core-SW ", " Gi1/0/12") == NetworkSignals(
        "f06e0bc20321", "core-sw", "gi1/0/12"
    )
    assert parse_input_network("f06e.0bc2.0321", None, None) == NetworkSignals("f06e0bc20321")
    assert parse_input_network(None, "00-1B-54-AA-BB-CC", None) == NetworkSignals(
        None, "001b54aabbcc"
    )
    assert parse_input_network(None, None, None) is None


@pytest.mark.parametrize(
    ("bssid", "chassis", "port", "message"),
    [
        ("f0:6e:0b:c2:03", None, None, "--bssid 'f0:6e:0b:c2:03' is not a MAC address"),
        ("zz:6e:0b:c2:03:21", None, None, "is not a MAC address"),
        ("f0:6e:0b:c2:03:2*", None, None, "patterns belong in IP groups"),
        (None, None, "Gi1/0/12", "--switch-port needs --switch-chassis"),
        (None, "  ", None, "--switch-chassis '  ' is empty"),
        (None, "sw", "", "--switch-port '' is empty"),
    ],
)
def test_bad_network_input_is_refused_naming_the_value(
    bssid: str | None, chassis: str | None, port: str | None, message: str
) -> None:
    with pytest.raises(InvalidNetwork) as info:
        parse_input_network(bssid, chassis, port)
    assert message in str(info.value)


# ---- geolocation (docs/spec.md#geolocation-check)
# -----------------------------------------------------------

PARIS = (48.8566, 2.3522)
LYON = (45.7640, 4.8357)
GEO_LOCATIONS = (
    Location("hq", "Headquarters", PARIS),
    Location("home", "Home office"),
    Location("lab", "Lab", LYON),
)


def geo_at(point: tuple[float, float], accuracy_km: float = 10.0) -> GeoCheck:
    def lookup(_ip: object) -> GeoPoint:
        return GeoPoint(point[0], point[1], accuracy_km)

    return GeoCheck(lookup, max_distance_km=50.0)


def test_geolocation_far_from_the_assigned_location_is_shown() -> None:
    ex = explain(ELSEWHERE, locations=GEO_LOCATIONS, location_id="lab", geo=geo_at(PARIS))
    assert ex.outcome is Outcome.MISMATCH
    assert ex.verdict.matched_by is MatchedBy.GEOIP
    assert rec_ids(ex) == ["hq", "lab"]  # nearest first: the IP is in Paris
    geo = to_json(ex)["geo"]
    assert geo is not None
    assert (geo["lat"], geo["lon"], geo["accuracy_km"], geo["limit_km"]) == (*PARIS, 10.0, 60.0)
    assert 380 < geo["distance_km"] < 400
    assert ex.sentence.startswith(
        "mismatch: the IP is on none of the account's networks and Lab has no IP groups; "
        "geolocation places the IP at 48.8566, 2.3522, 391 km from Lab (allowed: 60 km"
    )
    text = render_text(ex)
    assert "Recommended  nearest_locations: Headquarters (hq), Lab (lab)" in text
    assert (
        "Geolocation  the IP is at 48.8566, 2.3522 (accuracy 10 km): 391 km from the "
        "assigned location, 60 km allowed"
    ) in text
    assert "Matched by   geoip" in text


def test_geolocation_near_the_assigned_location_stays_undetermined() -> None:
    ex = explain(ELSEWHERE, locations=GEO_LOCATIONS, location_id="lab", geo=geo_at(LYON))
    assert ex.outcome is Outcome.UNDETERMINED
    assert ex.verdict.geo is not None and ex.verdict.geo.distance_km == 0
    assert "geolocation places the IP at 45.7640, 4.8357, 0 km from Lab" in ex.sentence
    assert "which is close enough" in ex.sentence
    assert "Geolocation  the IP is at 45.7640, 4.8357" in render_text(ex)
    # Without a GeoCheck the same case has no reading at all.
    assert to_json(explain(ELSEWHERE, locations=GEO_LOCATIONS, location_id="lab"))["geo"] is None


# ---- property: explain never disagrees with the daemon --------------------------------

LOCATION_IDS = ("l1", "l2", "l3", "l4")
# Small pools so that signals often match, tie and fall through.
BSSID_PATTERNS = ("aabbccddee01", "aabbccddee0*", "aabbccddee02")
SWITCH_REFS = (SwitchRef("sw1"), SwitchRef("sw1", "p1"), SwitchRef("sw2", "p1"))

Scenario = tuple[list[Location], list[IpGroup], Account, User, str, NetworkSignals | None]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    locations = [
        Location(lid, draw(st.sampled_from(("Alpha", "Beta", "Gamma", "Beta"))))
        for lid in draw(st.lists(st.sampled_from(LOCATION_IDS), unique=True, max_size=4))
    ]
    groups: list[IpGroup] = []
    for i in range(draw(st.integers(0, 6))):
        nets = []
        for _ in range(draw(st.integers(0, 3))):
            prefix = draw(st.integers(20, 32))
            base = draw(st.integers(0, 2**12 - 1))
            # Inside 10.0.0.0/20 so that networks often contain the IP and each other.
            nets.append(ipaddress.ip_network((0x0A000000 + base, prefix), strict=False))
        location_id = draw(st.sampled_from((None, "missing", *LOCATION_IDS)))
        groups.append(
            IpGroup(
                f"g{i}",
                f"G{i}",
                location_id,
                tuple(dict.fromkeys(nets)),
                tuple(draw(st.lists(st.sampled_from(BSSID_PATTERNS), unique=True, max_size=2))),
                tuple(draw(st.lists(st.sampled_from(SWITCH_REFS), unique=True, max_size=2))),
                draw(st.sampled_from((True, True, True, False))),
            )
        )
    # Mostly enabled, so the signals usually get to decide something.
    account = Account("acme", draw(st.sampled_from((True, True, False))))
    user = User(
        "acme", "u1", draw(st.booleans()), draw(st.sampled_from((None, "missing", *LOCATION_IDS)))
    )
    ip = str(ipaddress.IPv4Address(0x0A000000 + draw(st.integers(0, 2**12 - 1))))
    if draw(st.booleans()):
        ip = "::ffff:" + ip
    chassis = draw(st.sampled_from((None, "sw1", "sw2", "sw3")))
    network = parse_input_network(
        draw(
            st.sampled_from((None, "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:03", "aa:bb:cc:dd:ee:13"))
        ),
        chassis,
        None if chassis is None else draw(st.sampled_from((None, "p1", "P2"))),
    )
    return locations, groups, account, user, ip, network


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_explanation_agrees_with_the_daemon(scenario: Scenario) -> None:
    locations, groups, account, user, ip_text, network = scenario
    directory = AccountDirectory("acme", locations, groups)  # as the loader builds it
    ex = build_explanation(
        user_id="u1",
        ip=parse_input_ip(ip_text),
        account=account,
        user=user,
        directory=directory,
        ip_groups=groups,
        addresses=entries(groups),
        network=network,
    )
    address = ipaddress.ip_address(ip_text)
    verdict = evaluate(directory, account, user, address, network)
    assert ex.outcome is verdict.outcome
    assert ex.verdict.recommendation == verdict.recommendation
    assert ex.verdict.matched_by is verdict.matched_by
    assert ex.fingerprint == verdict.fingerprint
    # Signals: in precedence order, at most one decided, and it is the daemon's own.
    order = [MatchedBy.BSSID, MatchedBy.SWITCH_PORT, MatchedBy.SWITCH, MatchedBy.IP]
    shown = [r.signal for r in ex.signals]
    assert shown == sorted(shown, key=order.index) and shown[-1] is MatchedBy.IP
    decided = [r for r in ex.signals if r.decided]
    located = directory.locate(address, network)
    if located is None:
        assert decided == [] and not any(r.matched for r in ex.signals)
    else:
        (row,) = decided
        assert row.signal is located.signal and row.ip_group_ids == located.group_ids
        assert not any(r.matched for r in ex.signals[: ex.signals.index(row)])
        assert row.locating is located.locating
    if verdict.match is not None and verdict.matched_by is not MatchedBy.GEOIP:
        assert ex.decided is not None and ex.decided.signal is verdict.matched_by
    # The "Why" line names the resolution the daemon would apply to an open alert.
    assigned_id = verdict.assigned_location.location_id if verdict.assigned_location else None
    resolution = decide(verdict, OpenAlert("a", "f", assigned_id)).resolve
    if ex.outcome not in (Outcome.MATCH, Outcome.MISMATCH) and resolution is not None:
        assert str(resolution) in ex.sentence
    if ex.outcome is Outcome.UNDETERMINED:
        assert resolution is ResolveReason.LOCATION_UNDETERMINED
    counted = [g for g in ex.containing_groups if g.counted]
    hit = directory.match(address)
    if not counted:
        assert ex.winner is None and hit is None
    else:
        assert ex.winner is not None and hit is not None
        assert ex.winner.prefix_len == max(g.prefix_len for g in counted)
        assert ex.winner.prefix_len == hit.prefix_len
        assert ex.winner.locating is hit.locating
        assert {g.ip_group_id for g in counted if g.winner} == set(hit.group_ids)
        assert {loc.location_id for loc in ex.winner.locations} == hit.location_ids
    known = {loc.location_id for loc in locations}
    for g in ex.containing_groups:
        assert g.counted is (not g.locating or g.location_id in known)
        assert g.network.prefixlen == g.prefix_len
        assert ipaddress.ip_address(str(ex.ip.address)) in g.network
    render_text(ex)  # renders every generated case without error
    json.loads(render_json(ex))
