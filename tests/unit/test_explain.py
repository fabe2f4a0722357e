"""`e911d explain` reasoning, from literals (no database): it must tell a support
engineer the truth, i.e. exactly what the daemon's rules decide, and why."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.daemon.evaluation import AccountDirectory, evaluate
from e911d.daemon.explain import (
    ASSIGNED,
    DANGLING,
    NONE,
    UNKNOWN,
    ActiveSession,
    Explanation,
    GroupRow,
    InvalidIp,
    build_explanation,
    parse_input_ip,
    render_json,
    render_text,
    to_json,
)
from e911d.daemon.model import (
    Account,
    IpGroup,
    Location,
    Outcome,
    RecommendationKind,
    User,
    fingerprint_of,
)

HQ = Location("hq", "Headquarters")
HOME = Location("home", "Home office")
LAB = Location("lab", "Lab")  # no IP group
LOCATIONS = (HQ, HOME, LAB)

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
ELSEWHERE = "192.0.2.77"


def grp(gid: str, location_id: str | None, *items: str) -> GroupRow:
    nets = tuple(ipaddress.ip_network(i) for i in items)
    return GroupRow(gid, f"group {gid}", location_id, tuple(items), nets)


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
    groups: Iterable[GroupRow] = GROUPS,
    sessions: Iterable[ActiveSession] = (),
) -> Explanation:
    return build_explanation(
        account_id="acme",
        user_id="u1",
        ip=parse_input_ip(ip),
        account=None if account_on is None else Account("acme", account_on),
        user=None if user_on is None else User("acme", "u1", user_on, location_id),
        locations=locations,
        ip_groups=groups,
        sessions=sessions,
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
    group = GroupRow(
        "home-net",
        "Home",
        "home",
        ("192.0.2.1", "198.51.100.0-198.51.100.255"),
        (ipaddress.ip_network("192.0.2.1/32"), ipaddress.ip_network("198.51.100.0/24")),
    )
    ex = explain(HOME_IP, groups=(group,))
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
    ]
    assert data["outcome"] == "mismatch"
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


# ---- property: explain never disagrees with the daemon --------------------------------

LOCATION_IDS = ("l1", "l2", "l3", "l4")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Location], list[GroupRow], Account, User, str]:
    locations = [
        Location(lid, draw(st.sampled_from(("Alpha", "Beta", "Gamma", "Beta"))))
        for lid in draw(st.lists(st.sampled_from(LOCATION_IDS), unique=True, max_size=4))
    ]
    groups: list[GroupRow] = []
    for i in range(draw(st.integers(0, 6))):
        nets = []
        for _ in range(draw(st.integers(0, 3))):
            prefix = draw(st.integers(20, 32))
            base = draw(st.integers(0, 2**12 - 1))
            # Inside 10.0.0.0/20 so that networks often contain the IP and each other.
            nets.append(ipaddress.ip_network((0x0A000000 + base, prefix), strict=False))
        location_id = draw(st.sampled_from((None, "missing", *LOCATION_IDS)))
        groups.append(
            GroupRow(
                f"g{i}",
                f"G{i}",
                location_id,
                tuple(str(n) for n in nets),
                tuple(dict.fromkeys(nets)),
            )
        )
    account = Account("acme", draw(st.booleans()))
    user = User(
        "acme", "u1", draw(st.booleans()), draw(st.sampled_from((None, "missing", *LOCATION_IDS)))
    )
    ip = str(ipaddress.IPv4Address(0x0A000000 + draw(st.integers(0, 2**12 - 1))))
    if draw(st.booleans()):
        ip = "::ffff:" + ip
    return locations, groups, account, user, ip


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_explanation_agrees_with_the_daemon(
    scenario: tuple[list[Location], list[GroupRow], Account, User, str],
) -> None:
    locations, groups, account, user, ip_text = scenario
    ex = build_explanation(
        account_id="acme",
        user_id="u1",
        ip=parse_input_ip(ip_text),
        account=account,
        user=user,
        locations=locations,
        ip_groups=groups,
    )
    directory = AccountDirectory(
        "acme",
        locations,
        [IpGroup(g.ip_group_id, g.name, g.location_id, g.networks) for g in groups],
    )
    address = ipaddress.ip_address(ip_text)
    verdict = evaluate(directory, account, user, address)
    assert ex.outcome is verdict.outcome
    assert ex.verdict.recommendation == verdict.recommendation
    assert ex.fingerprint == verdict.fingerprint
    counted = [g for g in ex.containing_groups if g.counted]
    hit = directory.match(address)
    if not counted:
        assert ex.winner is None and hit is None
    else:
        assert ex.winner is not None and hit is not None
        assert ex.winner.prefix_len == max(g.prefix_len for g in counted)
        assert ex.winner.prefix_len == hit.prefix_len
        assert {g.ip_group_id for g in counted if g.winner} == set(hit.group_ids)
        assert {loc.location_id for loc in ex.winner.locations} == hit.location_ids
    known = {loc.location_id for loc in locations}
    for g in ex.containing_groups:
        assert g.counted is (g.location_id in known)
        assert g.network.prefixlen == g.prefix_len
        assert ipaddress.ip_address(str(ex.ip.address)) in g.network
    render_text(ex)  # renders every generated case without error
    json.loads(render_json(ex))
