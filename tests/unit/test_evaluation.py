"""Pure rules of a check: docs/spec.md#effective-setting (effective setting) and §2.3 (what a check
decides)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.daemon.core.evaluation import (
    AccountDirectory,
    decide,
    effective_setting,
    evaluate,
)
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
    User,
    Verdict,
    fingerprint_of,
)

ACCOUNT_ID = "acme"
HQ = Location("hq", "Headquarters")
HOME = Location("home", "Home office")
BRANCH = Location("branch", "Branch")
LAB = Location("lab", "Lab")  # a location with no IP group


def net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text)


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


def group(gid: str, location_id: str | None, *networks: str) -> IpGroup:
    return IpGroup(gid, f"group {gid}", location_id, tuple(net(n) for n in networks))


def directory(
    locations: Iterable[Location] = (HQ, HOME, BRANCH, LAB),
    groups: Iterable[IpGroup] = (
        group("g-hq", "hq", "203.0.113.0/24"),
        group("g-home", "home", "198.51.100.0/24"),
        group("g-branch", "branch", "192.0.2.0/24"),
    ),
    account_id: str = ACCOUNT_ID,
) -> AccountDirectory:
    return AccountDirectory(account_id, locations, groups)


def account(on: bool = True) -> Account:
    return Account(ACCOUNT_ID, on)


def user(location_id: str | None = "hq", on: bool = True) -> User:
    return User(ACCOUNT_ID, "alice", on, location_id)


def ids(verdict: Verdict) -> list[str]:
    assert verdict.recommendation is not None
    return [loc.location_id for loc in verdict.recommendation.locations]


# ---- §2.1 effective setting ---------------------------------------------------------


@pytest.mark.parametrize(
    ("account_on", "user_on", "expected"),
    [(True, True, True), (True, False, True), (False, True, True), (False, False, False)],
)
def test_effective_setting_truth_table(account_on: bool, user_on: bool, expected: bool) -> None:
    assert effective_setting(Account("a", account_on), User("a", "u", user_on, None)) is expected


def test_account_toggle_off_gives_users_their_own_setting_back() -> None:
    d = directory()
    off_user = user(on=False)
    assert evaluate(d, account(True), off_user, ip("203.0.113.5")).outcome is Outcome.MATCH
    assert evaluate(d, account(False), off_user, ip("203.0.113.5")).outcome is Outcome.DISABLED
    assert evaluate(d, account(False), user(on=True), ip("203.0.113.5")).outcome is Outcome.MATCH


# ---- §2.3 rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("has_dir", "has_account", "has_user"),
    [(False, True, True), (True, False, True), (True, True, False), (False, False, False)],
)
def test_unknown_account_or_user(has_dir: bool, has_account: bool, has_user: bool) -> None:
    verdict = evaluate(
        directory() if has_dir else None,
        account() if has_account else None,
        user() if has_user else None,
        ip("203.0.113.5"),
    )
    assert verdict.outcome is Outcome.UNKNOWN_USER
    assert verdict.fingerprint is None
    assert verdict.recommendation is None


def test_disabled() -> None:
    verdict = evaluate(directory(), account(False), user(on=False), ip("198.51.100.7"))
    assert verdict.outcome is Outcome.DISABLED
    assert verdict.recommendation is None
    assert verdict.fingerprint is None


def test_no_assigned_location_with_matches_recommends_the_matches() -> None:
    verdict = evaluate(directory(), account(), user(None), ip("198.51.100.7"))
    assert verdict.outcome is Outcome.MISMATCH
    assert verdict.assigned_location is None
    assert verdict.recommendation == Recommendation(
        RecommendationKind.IP_GROUP_MATCH, (HOME,), MatchedBy.IP
    )
    assert verdict.matched_prefix_len == 24
    assert verdict.matched_ip_groups == ("g-home",)


def test_no_assigned_location_without_matches_recommends_all_locations_by_name() -> None:
    verdict = evaluate(directory(), account(), user(None), ip("8.8.8.8"))
    assert verdict.outcome is Outcome.MISMATCH
    assert verdict.assigned_location is None
    assert verdict.recommendation is not None
    assert verdict.recommendation.kind is RecommendationKind.ALL_LOCATIONS
    assert verdict.recommendation.matched_by is None
    # Branch < Headquarters < Home office < Lab
    assert ids(verdict) == ["branch", "hq", "home", "lab"]


def test_assigned_location_among_matches_is_a_match() -> None:
    verdict = evaluate(directory(), account(), user("hq"), ip("203.0.113.200"))
    assert verdict.outcome is Outcome.MATCH
    assert verdict.assigned_location == HQ
    assert verdict.recommendation is None
    assert verdict.fingerprint is None


def test_assigned_location_among_several_matches_is_a_match() -> None:
    d = directory(groups=[group("g1", "home", "10.0.0.0/8"), group("g2", "hq", "10.0.0.0/8")])
    assert evaluate(d, account(), user("hq"), ip("10.1.2.3")).outcome is Outcome.MATCH
    assert evaluate(d, account(), user("home"), ip("10.1.2.3")).outcome is Outcome.MATCH


def test_matches_not_containing_assigned_location_recommend_the_matches_by_name() -> None:
    d = directory(
        groups=[
            group("g-hq", "hq", "203.0.113.0/24"),
            group("g-z", "lab", "10.0.0.0/16"),
            group("g-a", "branch", "10.0.0.0/16"),
        ]
    )
    verdict = evaluate(d, account(), user("hq"), ip("10.0.3.4"))
    assert verdict.outcome is Outcome.MISMATCH
    assert verdict.assigned_location == HQ
    assert verdict.recommendation is not None
    assert verdict.recommendation.kind is RecommendationKind.IP_GROUP_MATCH
    assert ids(verdict) == ["branch", "lab"]  # "Branch" < "Lab"
    assert verdict.matched_ip_groups == ("g-a", "g-z")


def test_no_matches_and_assigned_location_has_ip_groups_recommends_all_locations() -> None:
    verdict = evaluate(directory(), account(), user("home"), ip("8.8.8.8"))
    assert verdict.outcome is Outcome.MISMATCH
    assert verdict.assigned_location == HOME
    assert verdict.recommendation is not None
    assert verdict.recommendation.kind is RecommendationKind.ALL_LOCATIONS
    assert verdict.recommendation.matched_by is None
    assert ids(verdict) == ["branch", "hq", "home", "lab"]
    assert verdict.matched_prefix_len is None


def test_no_matches_and_assigned_location_without_ip_groups_is_undetermined() -> None:
    verdict = evaluate(directory(), account(), user("lab"), ip("8.8.8.8"))
    assert verdict.outcome is Outcome.UNDETERMINED
    assert verdict.assigned_location == LAB
    assert verdict.recommendation is None
    assert verdict.fingerprint is None


def test_assigned_location_with_only_unbound_groups_counts_as_without_groups() -> None:
    d = directory(groups=[group("g", None, "8.8.8.0/24")])
    assert evaluate(d, account(), user("lab"), ip("1.1.1.1")).outcome is Outcome.UNDETERMINED


def test_dangling_assigned_location_is_treated_as_none() -> None:
    d = directory()
    dangling = user("deleted-location")
    with_match = evaluate(d, account(), dangling, ip("198.51.100.7"))
    assert with_match.outcome is Outcome.MISMATCH
    assert with_match.assigned_location is None
    assert with_match.recommendation == Recommendation(
        RecommendationKind.IP_GROUP_MATCH, (HOME,), MatchedBy.IP
    )
    assert (
        with_match.fingerprint == evaluate(d, account(), user(None), ip("198.51.100.7")).fingerprint
    )
    without = evaluate(d, account(), dangling, ip("8.8.8.8"))
    assert without.outcome is Outcome.MISMATCH
    assert without.assigned_location is None
    assert without.recommendation is not None
    assert without.recommendation.kind is RecommendationKind.ALL_LOCATIONS


def test_location_of_another_account_is_dangling() -> None:
    # The user names a location id that exists only in another account's directory.
    other = directory(account_id="other", locations=[Location("x", "X")], groups=[])
    assert "x" not in directory().locations
    verdict = evaluate(directory(), account(), user("x"), ip("8.8.8.8"))
    assert other.locations["x"].name == "X"
    assert verdict.outcome is Outcome.MISMATCH
    assert verdict.assigned_location is None
    assert "x" not in ids(verdict)


# ---- longest prefix -----------------------------------------------------------------

A = Location("a", "Alpha")
B = Location("b", "Beta")
C = Location("c", "Gamma")


def nested() -> AccountDirectory:
    return AccountDirectory(
        ACCOUNT_ID,
        [A, B, C],
        [group("wide", "a", "10.1.2.0/24"), group("narrow", "b", "10.1.2.16/28")],
    )


def matched(d: AccountDirectory, address: str) -> set[str]:
    hit = d.match(ip(address))
    return set() if hit is None else set(hit.location_ids)


def test_longest_prefix_inside_the_narrow_network_gives_only_it() -> None:
    d = nested()
    assert matched(d, "10.1.2.20") == {"b"}
    assert d.match(ip("10.1.2.20")).prefix_len == 28  # type: ignore[union-attr]
    verdict = evaluate(d, account(), user("a"), ip("10.1.2.20"))
    assert verdict.outcome is Outcome.MISMATCH
    assert ids(verdict) == ["b"]


def test_longest_prefix_outside_the_narrow_network_gives_the_wide_one() -> None:
    d = nested()
    for address in ("10.1.2.15", "10.1.2.32", "10.1.2.0", "10.1.2.255"):
        assert matched(d, address) == {"a"}
    assert evaluate(d, account(), user("a"), ip("10.1.2.1")).outcome is Outcome.MATCH
    assert matched(d, "10.1.3.1") == set()


def test_same_longest_prefix_for_two_locations_gives_both() -> None:
    d = AccountDirectory(
        ACCOUNT_ID,
        [A, B, C],
        [
            group("g1", "b", "10.0.0.0/16"),
            group("g2", "a", "10.0.0.0/16"),
            group("g3", "c", "10.0.0.0/8"),
        ],
    )
    assert matched(d, "10.0.9.9") == {"a", "b"}
    verdict = evaluate(d, account(), user("c"), ip("10.0.9.9"))
    assert ids(verdict) == ["a", "b"]
    assert evaluate(d, account(), user("c"), ip("10.9.9.9")).outcome is Outcome.MATCH


def test_unbound_group_does_not_shadow_a_bound_network() -> None:
    d = AccountDirectory(
        ACCOUNT_ID,
        [A, B],
        [group("unbound", None, "10.1.2.3/32"), group("bound", "a", "10.1.2.0/24")],
    )
    assert matched(d, "10.1.2.3") == {"a"}
    assert d.match(ip("10.1.2.3")).prefix_len == 24  # type: ignore[union-attr]
    assert evaluate(d, account(), user("a"), ip("10.1.2.3")).outcome is Outcome.MATCH


def test_group_of_a_missing_location_is_ignored() -> None:
    d = AccountDirectory(
        ACCOUNT_ID,
        [A, B],
        [group("ghost", "gone", "10.1.2.3/32"), group("bound", "a", "10.1.2.0/24")],
    )
    assert matched(d, "10.1.2.3") == {"a"}
    assert "gone" not in d.locations_with_groups
    verdict = evaluate(d, account(), user("b"), ip("10.1.2.3"))
    assert ids(verdict) == ["a"]


def test_ipv6_networks() -> None:
    d = AccountDirectory(
        ACCOUNT_ID,
        [A, B],
        [group("v6a", "a", "2001:db8::/32"), group("v6b", "b", "2001:db8:1::/48")],
    )
    assert matched(d, "2001:db8:1::5") == {"b"}
    assert matched(d, "2001:db8:2::5") == {"a"}
    assert matched(d, "2001:db9::1") == set()
    assert matched(d, "32.1.13.184") == set()  # the IPv4 number of 2001:db8:: is not IPv6
    assert evaluate(d, account(), user("b"), ip("2001:db8:1::5")).outcome is Outcome.MATCH


def test_ipv4_mapped_ipv6_address_matches_an_ipv4_group() -> None:
    d = directory()
    mapped = ip("::ffff:203.0.113.5")
    assert normalize_ip(mapped) == ip("203.0.113.5")
    assert normalize_ip(ip("2001:db8::1")) == ip("2001:db8::1")
    assert matched(d, "::ffff:203.0.113.5") == {"hq"}
    assert evaluate(d, account(), user("hq"), mapped).outcome is Outcome.MATCH


def test_zero_prefix_matches_everything_of_its_family() -> None:
    d = AccountDirectory(
        ACCOUNT_ID, [A, B], [group("all4", "a", "0.0.0.0/0"), group("all6", "b", "::/0")]
    )
    for address in ("0.0.0.0", "1.2.3.4", "255.255.255.255"):
        hit = d.match(ip(address))
        assert hit is not None
        assert hit.prefix_len == 0
        assert set(hit.location_ids) == {"a"}
    assert matched(d, "2001:db8::1") == {"b"}
    assert matched(d, "::") == {"b"}
    assert evaluate(d, account(), user("a"), ip("9.9.9.9")).outcome is Outcome.MATCH


def test_host_address_group() -> None:
    d = AccountDirectory(ACCOUNT_ID, [A], [group("h", "a", "10.0.0.7/32")])
    assert matched(d, "10.0.0.7") == {"a"}
    assert matched(d, "10.0.0.6") == set()
    assert matched(d, "10.0.0.8") == set()


# ---- fingerprint --------------------------------------------------------------------


def mismatch(assigned: Location | None, *recommended: Location) -> Verdict:
    return Verdict(
        Outcome.MISMATCH,
        assigned_location=assigned,
        recommendation=Recommendation(RecommendationKind.IP_GROUP_MATCH, recommended),
    )


def test_fingerprint_ignores_order_of_recommended_ids() -> None:
    assert mismatch(HQ, HOME, BRANCH).fingerprint == mismatch(HQ, BRANCH, HOME).fingerprint
    assert fingerprint_of("hq", ["a", "b", "c"]) == fingerprint_of("hq", ["c", "a", "b"])
    assert mismatch(HQ, HOME, BRANCH).fingerprint == fingerprint_of("hq", ["home", "branch"])


def test_fingerprint_changes_with_assigned_location() -> None:
    fps = {
        mismatch(HQ, HOME).fingerprint,
        mismatch(LAB, HOME).fingerprint,
        mismatch(None, HOME).fingerprint,
    }
    assert len(fps) == 3


def test_fingerprint_changes_with_the_set_of_recommended_ids() -> None:
    fps = {
        mismatch(HQ, HOME).fingerprint,
        mismatch(HQ, HOME, BRANCH).fingerprint,
        mismatch(HQ, BRANCH).fingerprint,
        mismatch(HQ).fingerprint,
    }
    assert len(fps) == 4
    # Ids that would collide if joined naively stay distinct.
    assert fingerprint_of("a", ["b"]) != fingerprint_of(None, ["a", "b"])
    assert fingerprint_of(None, ["ab"]) != fingerprint_of(None, ["a", "b"])


@pytest.mark.parametrize(
    "outcome", [Outcome.MATCH, Outcome.UNDETERMINED, Outcome.DISABLED, Outcome.UNKNOWN_USER]
)
def test_fingerprint_is_none_for_non_mismatch(outcome: Outcome) -> None:
    verdict = Verdict(
        outcome,
        assigned_location=HQ,
        recommendation=Recommendation(RecommendationKind.IP_GROUP_MATCH, (HOME,)),
    )
    assert verdict.fingerprint is None


# ---- decide -------------------------------------------------------------------------

FP = fingerprint_of("hq", ["home"])
OTHER_FP = fingerprint_of("hq", ["branch"])


def test_decide_unknown_user_resolves_an_open_alert_as_user_unknown() -> None:
    verdict = Verdict(Outcome.UNKNOWN_USER)
    assert decide(verdict, None).changes_nothing
    decision = decide(verdict, OpenAlert("al", FP, "hq"))
    assert decision.resolve is ResolveReason.USER_UNKNOWN
    assert decision.raise_fingerprint is None


def test_decide_no_locations_resolves_as_undetermined_even_if_the_assignment_changed() -> None:
    verdict = Verdict(Outcome.NO_LOCATIONS)
    assert decide(verdict, None).changes_nothing
    decision = decide(verdict, OpenAlert("al", FP, "hq"))
    assert decision.resolve is ResolveReason.LOCATION_UNDETERMINED


def test_decide_disabled_resolves_an_open_alert() -> None:
    decision = decide(Verdict(Outcome.DISABLED), OpenAlert("al", FP, "hq"))
    assert decision.resolve is ResolveReason.RECOMMENDATIONS_DISABLED
    assert decision.raise_fingerprint is None
    assert decide(Verdict(Outcome.DISABLED), None).changes_nothing


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (Outcome.MATCH, ResolveReason.LOCATION_MATCHED),
        # Nothing says the user is elsewhere any more; nothing says they moved either.
        (Outcome.UNDETERMINED, ResolveReason.LOCATION_UNDETERMINED),
    ],
)
def test_decide_match_or_undetermined_resolves_an_open_alert(
    outcome: Outcome, reason: ResolveReason
) -> None:
    decision = decide(Verdict(outcome, assigned_location=HQ), OpenAlert("al", FP, "hq"))
    assert decision.resolve is reason
    assert decision.raise_fingerprint is None
    assert decide(Verdict(outcome, assigned_location=HQ), None).changes_nothing


def test_decide_mismatch_without_open_alert_raises() -> None:
    decision = decide(mismatch(HQ, HOME), None)
    assert decision.raise_fingerprint == FP
    assert decision.resolve is None
    assert decision.snoozed is False


def test_decide_unchanged_mismatch_never_raises_twice() -> None:
    decision = decide(mismatch(HQ, HOME), OpenAlert("al", FP, "hq"))
    assert decision.changes_nothing
    assert decision.raise_fingerprint is None
    # Even when that fingerprint is snoozed, the open alert stays as it is.
    assert decide(mismatch(HQ, HOME), OpenAlert("al", FP, "hq"), frozenset({FP})).changes_nothing


def test_decide_changed_mismatch_supersedes() -> None:
    decision = decide(mismatch(HQ, HOME), OpenAlert("al", OTHER_FP, "hq"))
    assert decision.resolve is ResolveReason.SUPERSEDED
    assert decision.raise_fingerprint == FP


def test_decide_snoozed_fingerprint_is_not_raised() -> None:
    decision = decide(mismatch(HQ, HOME), None, frozenset({FP}))
    assert decision.snoozed is True
    assert decision.raise_fingerprint is None
    assert decision.changes_nothing
    # A different fingerprint is raised as usual.
    other = decide(mismatch(HQ, BRANCH), None, frozenset({FP}))
    assert other.raise_fingerprint == OTHER_FP
    assert other.snoozed is False


def test_decide_snoozed_fingerprint_still_resolves_a_different_open_alert() -> None:
    decision = decide(mismatch(HQ, HOME), OpenAlert("al", OTHER_FP, "hq"), frozenset({FP}))
    assert decision.resolve is ResolveReason.SUPERSEDED
    assert decision.raise_fingerprint is None
    assert decision.snoozed is True


@pytest.mark.parametrize(
    ("verdict", "open_alert", "reason"),
    [
        # Raised against hq; the user now has home and matches: they fixed it.
        (Verdict(Outcome.MATCH, assigned_location=HOME), OpenAlert("al", FP, "hq"), "updated"),
        (Verdict(Outcome.UNDETERMINED, assigned_location=LAB), OpenAlert("al", FP, "hq"), "upd"),
        # Same assigned location as when raised: the user moved.
        (Verdict(Outcome.MATCH, assigned_location=HQ), OpenAlert("al", FP, "hq"), "matched"),
        # Raised with no location; now assigned and matching.
        (Verdict(Outcome.MATCH, assigned_location=HQ), OpenAlert("al", FP, None), "updated"),
        # A mismatch that persists is superseded, and a disabled user stays disabled,
        # even after a location change: those tell the subscriber what to do next.
        (mismatch(HOME, HQ), OpenAlert("al", FP, "hq"), "superseded"),
        (Verdict(Outcome.DISABLED), OpenAlert("al", FP, "hq"), "disabled"),
    ],
)
def test_resolution_reason_follows_the_assigned_location_the_alert_was_raised_for(
    verdict: Verdict, open_alert: OpenAlert, reason: str
) -> None:
    expected = {
        "updated": ResolveReason.LOCATION_UPDATED,
        "upd": ResolveReason.LOCATION_UPDATED,
        "matched": ResolveReason.LOCATION_MATCHED,
        "superseded": ResolveReason.SUPERSEDED,
        "disabled": ResolveReason.RECOMMENDATIONS_DISABLED,
    }[reason]
    assert decide(verdict, open_alert).resolve is expected


def test_a_location_change_that_still_mismatches_raises_the_new_alert() -> None:
    decision = decide(mismatch(LAB, HOME), OpenAlert("al", FP, "hq"))
    assert decision.resolve is ResolveReason.SUPERSEDED
    assert decision.raise_fingerprint == mismatch(LAB, HOME).fingerprint


def test_evaluate_then_decide_end_to_end() -> None:
    d = directory()
    first = evaluate(d, account(), user("hq"), ip("198.51.100.9"))
    raised = decide(first, None)
    assert raised.raise_fingerprint == fingerprint_of("hq", ["home"])
    open_alert = OpenAlert("al", raised.raise_fingerprint, "hq")
    assert decide(
        evaluate(d, account(), user("hq"), ip("198.51.100.10")), open_alert
    ).changes_nothing
    back = decide(evaluate(d, account(), user("hq"), ip("203.0.113.9")), open_alert)
    assert back.resolve is ResolveReason.LOCATION_MATCHED


# ---- properties ---------------------------------------------------------------------

# A small address space (10.0.0.0/24) so that random networks nest and collide often,
# plus a few short prefixes that cover it.
_BASE = int(ipaddress.IPv4Address("10.0.0.0"))


@st.composite
def ipv4_networks(draw: st.DrawFn) -> ipaddress.IPv4Network:
    prefix = draw(st.sampled_from([0, 8, 16, *range(22, 33)]))
    host = _BASE + draw(st.integers(0, 1023))
    return ipaddress.IPv4Network((host, prefix), strict=False)


ips = st.builds(lambda n: ipaddress.IPv4Address(_BASE + n), st.integers(0, 1023)) | st.builds(
    lambda n: ipaddress.IPv6Address(f"::ffff:{ipaddress.IPv4Address(_BASE + n)}"),
    st.integers(0, 1023),
)


@st.composite
def account_data(draw: st.DrawFn, prefix: str) -> tuple[list[Location], list[IpGroup], list[str]]:
    n_locations = draw(st.integers(0, 5))
    names = st.sampled_from(["Alpha", "Beta", "Gamma", "Delta"])  # duplicates on purpose
    locations = [Location(f"{prefix}-loc{i}", draw(names)) for i in range(n_locations)]
    location_ids = [loc.location_id for loc in locations]
    # Groups may be unbound or point to a location missing from this account.
    targets = st.sampled_from([*location_ids, None, f"{prefix}-missing"])
    groups = [
        IpGroup(
            f"{prefix}-g{i}",
            f"group {i}",
            draw(targets),
            tuple(draw(st.lists(ipv4_networks(), min_size=0, max_size=3))),
        )
        for i in range(draw(st.integers(0, 6)))
    ]
    return locations, groups, location_ids


def reference_matches(
    locations: list[Location], groups: list[IpGroup], address: ipaddress.IPv4Address
) -> set[str]:
    known = {loc.location_id for loc in locations}
    hits: list[tuple[int, str]] = []
    for g in groups:
        if g.location_id is None or g.location_id not in known:
            continue
        for n in g.networks:
            if n.version == address.version and address in n:
                hits.append((n.prefixlen, g.location_id))
    if not hits:
        return set()
    best = max(p for p, _ in hits)
    return {loc for p, loc in hits if p == best}


def has_groups(groups: list[IpGroup], location_id: str) -> bool:
    return any(g.location_id == location_id and g.networks for g in groups)


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(
    mine=account_data("mine"),
    theirs=account_data("theirs"),
    address=ips,
    assigned=st.integers(-1, 6),
    account_on=st.booleans(),
    user_on=st.booleans(),
)
def test_property_verdicts_follow_the_reference(
    mine: tuple[list[Location], list[IpGroup], list[str]],
    theirs: tuple[list[Location], list[IpGroup], list[str]],
    address: IPAddress,
    assigned: int,
    account_on: bool,
    user_on: bool,
) -> None:
    locations, groups, location_ids = mine
    other_locations, other_groups, other_ids = theirs
    # The other account's groups are handed to this account too (a corrupt snapshot
    # mixing accounts); their locations are not this account's, so they never count.
    d = AccountDirectory("mine", locations, [*groups, *other_groups])
    d_theirs = AccountDirectory("theirs", other_locations, other_groups)
    if assigned < 0:
        assigned_id: str | None = None
    elif assigned < len(location_ids):
        assigned_id = location_ids[assigned]
    elif assigned < len(location_ids) + len(other_ids):
        assigned_id = other_ids[assigned - len(location_ids)]  # dangling for this account
    else:
        assigned_id = "mine-missing"
    u = User("mine", "u", user_on, assigned_id)
    verdict = evaluate(d, Account("mine", account_on), u, address)
    # (a) the other account, evaluated on its own directory, never sees this one's ids.
    their_verdict = evaluate(
        d_theirs, Account("theirs", True), User("theirs", "v", True, assigned_id), address
    )
    if their_verdict.recommendation is not None:
        their_ids = {loc.location_id for loc in their_verdict.recommendation.locations}
        assert their_ids <= set(other_ids)
        assert not their_ids & set(location_ids)
    if not (account_on or user_on):
        assert verdict.outcome is Outcome.DISABLED
        return
    if not locations:
        # docs/spec.md#what-a-check-decides step 3: the administrator's problem, never an alert.
        assert verdict.outcome is Outcome.NO_LOCATIONS
        assert verdict.recommendation is None
        return

    v4 = normalize_ip(address)
    assert isinstance(v4, ipaddress.IPv4Address)
    expected = reference_matches(locations, groups, v4)
    known_assigned = assigned_id if assigned_id in set(location_ids) else None

    # (b) MATCH ⇔ the assigned location is among the longest-prefix matches.
    assert (verdict.outcome is Outcome.MATCH) == (known_assigned in expected)
    if verdict.outcome is Outcome.MISMATCH:
        assert verdict.recommendation is not None
        rec = verdict.recommendation
        rec_ids = [loc.location_id for loc in rec.locations]
        # (a) only this account's locations are ever recommended.
        assert set(rec_ids) <= set(location_ids)
        assert not set(rec_ids) & set(other_ids)
        # (c) ordered by (name, id), unique.
        assert len(rec_ids) == len(set(rec_ids))
        keys = [(loc.name, loc.location_id) for loc in rec.locations]
        assert keys == sorted(keys)
        if expected:
            assert rec.kind is RecommendationKind.IP_GROUP_MATCH
            assert set(rec_ids) == expected
        else:
            assert rec.kind is RecommendationKind.ALL_LOCATIONS
            assert set(rec_ids) == set(location_ids)
        assert verdict.assigned_location == (
            None if known_assigned is None else d.locations[known_assigned]
        )
    elif verdict.outcome is Outcome.UNDETERMINED:
        assert known_assigned is not None
        assert not expected
        assert not has_groups(groups, known_assigned)
    else:
        assert verdict.outcome is Outcome.MATCH
    if known_assigned is not None and not expected:
        expected_outcome = (
            Outcome.MISMATCH if has_groups(groups, known_assigned) else Outcome.UNDETERMINED
        )
        assert verdict.outcome is expected_outcome

    # (d) applying a decision and deciding again with the resulting state changes nothing.
    for open_fp in (None, "stale-fingerprint", verdict.fingerprint):
        for snoozed in (frozenset(), frozenset({verdict.fingerprint or "x"})):
            open_alert = None if open_fp is None else OpenAlert("al", open_fp, "hq")
            first = decide(verdict, open_alert, snoozed)
            if first.raise_fingerprint is not None:
                state = OpenAlert(
                    "al2",
                    first.raise_fingerprint,
                    verdict.assigned_location.location_id if verdict.assigned_location else None,
                )
            elif first.resolve is not None:
                state = None
            else:
                state = open_alert
            assert decide(verdict, state, snoozed).changes_nothing
