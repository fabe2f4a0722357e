"""The pure parts of an import's impact: what is counted (daemon/core/impact.py), the
directory after the plan (impact_state.py) and the two renderings."""

from __future__ import annotations

import ipaddress

import pytest

from e911d.daemon.commands.directory_file.impact_render import render_json, render_text
from e911d.daemon.commands.directory_file.impact_state import after_state, current_state
from e911d.daemon.commands.directory_file.plan import Plan, Step
from e911d.daemon.core.confirmed_network import UserConfirmed
from e911d.daemon.core.evaluation import KEEP, AccountDirectory, AlertDecision
from e911d.daemon.core.events import (
    AccountUpserted,
    Address,
    IpGroupDeleted,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    UserDeleted,
    UserUpserted,
)
from e911d.daemon.core.impact import (
    NO_SNOOZES,
    AccountImpact,
    Action,
    Change,
    Example,
    Side,
    action_of,
    change_of,
    check_decision,
    totals,
)
from e911d.daemon.core.model import (
    Account,
    ConfirmedNetwork,
    IpGroup,
    Location,
    OpenAlert,
    ResolveReason,
    User,
)
from e911d.daemon.core.network_key import NetworkKey, NetworkKeyKind
from e911d.daemon.store.directory import LoadedAccount

pytestmark = pytest.mark.unit

RAISE_A = AlertDecision(raise_fingerprint="a")
RAISE_B = AlertDecision(raise_fingerprint="b")
SUPERSEDE_B = AlertDecision(resolve=ResolveReason.SUPERSEDED, raise_fingerprint="b")
SNOOZED_SUPERSEDE = AlertDecision(resolve=ResolveReason.SUPERSEDED, snoozed=True)
MATCHED = AlertDecision(resolve=ResolveReason.LOCATION_MATCHED)
SNOOZED = AlertDecision(snoozed=True)


def test_action_of_each_decision():
    assert action_of(KEEP) is Action.NONE
    assert action_of(SNOOZED) is Action.NONE
    assert action_of(RAISE_A) is Action.RAISE
    assert action_of(SUPERSEDE_B) is Action.SUPERSEDE
    assert action_of(SNOOZED_SUPERSEDE) is Action.SUPERSEDE
    assert action_of(MATCHED) is Action.RESOLVE


@pytest.mark.parametrize(
    ("now", "after", "expected"),
    [
        (KEEP, KEEP, None),
        (KEEP, SNOOZED, None),  # a snoozed mismatch writes nothing, like no mismatch
        (RAISE_A, AlertDecision(raise_fingerprint="a"), None),  # equal, not identical
        (KEEP, RAISE_A, Change.RAISED),
        (RAISE_A, RAISE_B, Change.RAISED),  # another alert than the one pending
        (KEEP, SUPERSEDE_B, Change.SUPERSEDED),
        (KEEP, SNOOZED_SUPERSEDE, Change.SUPERSEDED),
        (KEEP, MATCHED, Change.RESOLVED),
        (AlertDecision(resolve=ResolveReason.LOCATION_UPDATED), MATCHED, Change.RESOLVED),
        (RAISE_A, KEEP, Change.AVERTED),
        (MATCHED, SNOOZED, Change.AVERTED),
    ],
)
def test_change_of(now, after, expected):
    assert change_of(now, after) is expected


def _example(sid: str) -> Example:
    side = Side("match", Action.NONE, None, "hq", ())
    return Example(sid, "u", "10.0.0.1", side, side)


def test_account_impact_counts_every_session_and_each_change_once():
    impact = AccountImpact("acme", keep=2)
    assert impact.add(KEEP, KEEP) is None
    assert impact.add(RAISE_A, RAISE_A) is None
    assert impact.add(KEEP, RAISE_A) is Change.RAISED
    assert impact.add(KEEP, MATCHED) is Change.RESOLVED
    assert impact.add(RAISE_A, KEEP) is Change.AVERTED
    assert impact.sessions == 5
    assert impact.now == {"raise": 2, "supersede": 0, "resolve": 0}
    assert impact.after == {"raise": 2, "supersede": 0, "resolve": 1}
    assert dict(impact.changed) == {"raised": 1, "superseded": 0, "resolved": 1, "averted": 1}
    assert dict(impact.resolved_by_reason) == {"location_matched": 1}
    assert impact.changed_sessions == 3
    total = totals([impact, impact])
    assert total.sessions == 10 and total.changed["averted"] == 2


def test_examples_keep_the_smallest_ids_whatever_the_order():
    impact = AccountImpact("acme", keep=2)
    for sid in ("s5", "s3", "s9", "s1", "s4"):
        if impact.wants(Change.RAISED, sid):
            impact.example(Change.RAISED, _example(sid))
    assert [e.session_id for e in impact.examples[Change.RAISED]] == ["s1", "s3"]
    assert not impact.wants(Change.RAISED, "s4")
    assert not AccountImpact("acme", keep=0).wants(Change.RAISED, "s0")


HQ, BRANCH = Location("hq", "HQ"), Location("branch", "Branch")
HQ_NET = IpGroup("hq-net", "HQ", "hq", (ipaddress.ip_network("10.1.0.0/16"),))
ACME = Account("acme", True)
ALICE = User("acme", "alice", False, "hq")


def _loaded() -> LoadedAccount:
    return LoadedAccount(AccountDirectory("acme", [HQ, BRANCH], [HQ_NET]), (HQ_NET,))


def _decide(state, user_id="alice", ip="10.1.0.5", open_alert=None):
    user = state.users.get(user_id)
    addr = ipaddress.ip_address(ip)
    return check_decision(
        state.directory,
        state.account,
        user,
        addr,
        None,
        open_alert,
        NO_SNOOZES,
        None,
        state.confirmed.get(user_id),
    )


# Alice confirmed "branch" on her home network, which no group maps.
HOME_IP = "198.51.100.7"
HOME_KEY = NetworkKey(NetworkKeyKind.IP_PREFIX, "198.51.100.0/24")


def _alice_confirmed(location_id: str = "branch") -> dict[str, UserConfirmed]:
    entry = ConfirmedNetwork("acme", "alice", HOME_KEY, location_id)
    return {"alice": UserConfirmed("acme", "alice", [entry])}


def test_the_users_confirmed_networks_decide_on_both_sides():
    loaded, users, confirmed = _loaded(), {"alice": ALICE}, _alice_confirmed()
    now = current_state(ACME, loaded, users, confirmed)
    after = after_state("acme", ACME, loaded, users, confirmed, [])
    assert after.confirmed is confirmed  # untouched: the same value, decided once
    for state in (now, after):
        verdict, decision = _decide(state, ip=HOME_IP)
        assert verdict.outcome == "mismatch"
        assert verdict.recommendation.kind == "user_confirmed"
        assert [loc.location_id for loc in verdict.recommendation.locations] == ["branch"]
        assert decision.raise_fingerprint is not None
    # Without the entry the same session gets every location: the entry really decided.
    bare = current_state(ACME, loaded, users, {})
    assert _decide(bare, ip=HOME_IP)[0].recommendation.kind == "all_locations"


def test_deleting_the_confirmed_location_or_the_user_deletes_the_entries():
    loaded, users, confirmed = _loaded(), {"alice": ALICE}, _alice_confirmed()
    gone = after_state("acme", ACME, loaded, users, confirmed, [LocationDeleted("acme", "branch")])
    assert "alice" not in gone.confirmed
    verdict, _ = _decide(gone, ip=HOME_IP)
    assert verdict.recommendation.kind == "all_locations"
    deleted = after_state("acme", ACME, loaded, users, confirmed, [UserDeleted("acme", "alice")])
    assert deleted.confirmed == {}
    # Another location's deletion keeps alice's entry, as the very same value.
    other = after_state("acme", ACME, loaded, users, confirmed, [LocationDeleted("acme", "hq")])
    assert other.confirmed["alice"] is confirmed["alice"]


def test_a_group_the_file_adds_on_the_confirmed_network_wins_over_the_entry():
    loaded, users, confirmed = _loaded(), {"alice": ALICE}, _alice_confirmed()
    home = IpGroupUpserted(
        "acme", "home-net", "Home", "hq", (ipaddress.ip_network(HOME_KEY.value),)
    )
    after = after_state("acme", ACME, loaded, users, confirmed, [home])
    verdict, _ = _decide(after, ip=HOME_IP)
    assert verdict.outcome == "match" and verdict.matched_by == "ip"


def test_after_state_keeps_what_the_plan_does_not_touch():
    loaded, users = _loaded(), {"alice": ALICE}
    after = after_state("acme", ACME, loaded, users, {}, [UserUpserted("acme", "bob", True, None)])
    assert after.directory is loaded.directory  # compiled once, shared
    assert after.users["alice"] is ALICE and after.users["bob"].e911_recommendations
    assert "bob" not in users  # the current users are not changed


def test_after_state_deleting_an_assigned_location_leaves_the_user_without_one():
    loaded = _loaded()
    now = current_state(ACME, loaded, {"alice": ALICE}, {})
    after = after_state("acme", ACME, loaded, {"alice": ALICE}, {}, [LocationDeleted("acme", "hq")])
    assert _decide(now)[0].outcome == "match"
    verdict, decision = _decide(after)
    # hq-net now names no location and is ignored; alice's location id names nothing.
    assert verdict.outcome == "mismatch" and verdict.assigned_location is None
    assert [loc.location_id for loc in verdict.recommendation.locations] == ["branch"]
    assert decision.raise_fingerprint is not None


def test_after_state_applies_groups_users_and_the_account_toggle():
    loaded = _loaded()
    moved = IpGroupUpserted(
        "acme",
        "hq-net",
        "HQ",
        "branch",
        (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("10.1.0.0/16")),
        bssids=("F0-6E-0B-C2-03-21",),
    )
    after = after_state(
        "acme", ACME, loaded, {"alice": ALICE}, {}, [moved, AccountUpserted("acme", False)]
    )
    assert after.account == Account("acme", False)
    assert after.directory is not loaded.directory
    assert _decide(after)[0].outcome == "disabled"  # the account toggle off, alice's off
    on = after_state("acme", ACME, loaded, {"alice": ALICE}, {}, [moved])
    verdict, _ = _decide(on)
    assert verdict.outcome == "mismatch"
    assert verdict.match is not None and verdict.match.group_ids == ("hq-net",)
    gone = after_state(
        "acme", ACME, loaded, {"alice": ALICE}, {}, [IpGroupDeleted("acme", "hq-net")]
    )
    assert _decide(gone)[0].outcome == "undetermined"  # hq has no group any more
    deleted = after_state(
        "acme", ACME, loaded, {"alice": ALICE}, {}, [UserDeleted("acme", "alice")]
    )
    assert _decide(deleted)[0].outcome == "unknown_user"


def test_after_state_of_an_account_the_file_creates():
    loaded = LoadedAccount(AccountDirectory("new", [], []), ())
    now = current_state(None, loaded, {}, {})
    assert now.directory is None  # an unknown account: checks pass no snapshot
    after = after_state(
        "new",
        None,
        loaded,
        {},
        {},
        [
            AccountUpserted("new", True),
            LocationUpserted("new", "hq", "HQ", Address("1 Main St", "X", "US"), None),
            UserUpserted("new", "alice", False, None),
        ],
    )
    assert after.directory is not None and list(after.directory.locations) == ["hq"]
    assert _decide(after)[0].outcome == "mismatch"  # no assigned location: all_locations


def test_open_alert_of_a_user_turned_off_is_resolved_as_disabled():
    off = after_state(
        "acme",
        Account("acme", False),
        _loaded(),
        {"alice": User("acme", "alice", True, "branch")},
        {},
        [UserUpserted("acme", "alice", False, "branch")],
    )
    alert = OpenAlert("a1", "fp", "branch")
    _, decision = _decide(off, open_alert=alert)
    assert decision.resolve is ResolveReason.RECOMMENDATIONS_DISABLED


def _sample() -> tuple[Plan, list[AccountImpact]]:
    impact = AccountImpact("acme", keep=3)
    impact.add(KEEP, RAISE_A)
    impact.add(KEEP, MATCHED)
    side_now = Side("match", Action.NONE, None, "hq", ())
    side_after = Side("mismatch", Action.RAISE, None, "hq", ("branch",))
    impact.example(Change.RAISED, Example("s1", "alice", "10.1.0.5", side_now, side_after))
    step = Step("~", "ip_group", "acme", "hq-net", IpGroupDeleted("acme", "hq-net"))
    return Plan((step,), {}), [impact, AccountImpact("globex", keep=3)]


def test_render_text():
    _, impacts = _sample()
    lines = render_text(impacts)
    assert lines[1] == "account acme: 2 live sessions, 2 changed by this import"
    assert lines[2] == ("  1 raised, 0 superseded, 1 resolved (location_matched 1), 0 averted")
    assert lines[3:5] == [
        "  raised, e.g.:",
        "    s1  user alice  10.1.0.5, assigned hq: match: no change -> "
        "mismatch (recommends branch): raise",
    ]
    assert "account globex: 0 live sessions, 0 changed by this import" in lines
    assert lines[-1] == (
        "total: 2 accounts, 2 live sessions, 2 changed: "
        "1 raised, 0 superseded, 1 resolved (location_matched 1), 0 averted"
    )


def test_render_json_shape():
    plan, impacts = _sample()
    doc = render_json(plan, impacts)
    assert doc["plan"]["changes"] == [
        {"op": "~", "kind": "ip_group", "account_id": "acme", "id": "hq-net"}
    ]
    acme = doc["impact"]["accounts"][0]
    assert acme["changed"] == {
        "sessions": 2,
        "raised": 1,
        "superseded": 0,
        "resolved": 1,
        "averted": 0,
        "resolved_by_reason": {"location_matched": 1},
    }
    assert acme["next_check"] == {
        "current": {"raise": 0, "supersede": 0, "resolve": 0},
        "file": {"raise": 1, "supersede": 0, "resolve": 1},
    }
    assert acme["examples"]["raised"][0]["file"] == {
        "outcome": "mismatch",
        "action": "raise",
        "reason": None,
        "assigned_location_id": "hq",
        "recommended_location_ids": ["branch"],
    }
    assert acme["examples"]["averted"] == []
    assert doc["impact"]["total"]["accounts"] == 2 and doc["impact"]["total"]["sessions"] == 2
