"""`directory lint`'s rules: a directory built for each kind of problem finds exactly
that problem, and a clean one finds nothing. Directories are built by the import's own
validator from plain data, as both lint modes build them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from e911d.daemon.commands.directory_file import DirectoryFile, validate
from e911d.daemon.commands.lint import Code, Finding, Severity, lint
from e911d.daemon.commands.lint.command import render_json, render_text
from tests.directory_docs import group, loc, user

CLEAN: dict[str, Any] = {
    "account_id": "acme",
    "e911_recommendations": True,
    "locations": [loc("hq"), loc("lab")],
    "ip_groups": [
        group("g-hq", "hq", "10.0.0.0/16", bssids=["f0:6e:0b:c2:03:21"]),
        group("g-lab", "lab", "10.0.1.0/24", switches=[{"chassis_id": "00:1b:54:aa:bb:cc"}]),
        group("vpn", None, "198.51.100.0/24", locating=False),
    ],
    "users": [user("u1", "hq"), user("u2", "lab")],
}


def build(*accounts: dict[str, Any]) -> DirectoryFile:
    checked = validate({"accounts": list(accounts)}, check_references=False)
    assert checked.issues == ()
    assert checked.directory is not None
    return checked.directory


def account(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(CLEAN)
    out.update(changes)
    return out


def codes(directory: DirectoryFile) -> list[tuple[str, str]]:
    return [(f.code.value, f.path) for f in lint(directory)]


def test_a_clean_directory_finds_nothing() -> None:
    assert lint(build(CLEAN, account(account_id="other"))) == []


def test_the_import_still_refuses_a_dangling_reference() -> None:
    data = {"accounts": [account(users=[user("u1", "attic")])]}
    assert validate(data).directory is None
    assert validate(data, check_references=False).directory is not None


def test_a_user_assigned_to_a_missing_location_is_an_error() -> None:
    (found,) = lint(build(account(users=[user("u1", "hq"), user("u2", "attic")])))
    assert found.code is Code.USER_LOCATION_MISSING
    assert found.severity is Severity.ERROR
    assert found.path == "accounts[0].users[1]"
    assert found.account_id == "acme"
    assert "'attic'" in found.message


@pytest.mark.parametrize(
    ("toggle", "users", "expected"),
    [
        (True, [], [("account_without_locations", "accounts[0]")]),
        (False, [user("u", None, on=True)], [("account_without_locations", "accounts[0]")]),
        (False, [user("u", None)], []),  # nobody enabled: nothing to locate
    ],
)
def test_an_enabled_account_without_locations_is_an_error(
    toggle: bool, users: list[dict[str, Any]], expected: list[tuple[str, str]]
) -> None:
    bare = {"account_id": "a", "e911_recommendations": toggle, "users": users}
    assert codes(build(bare)) == expected


def test_users_of_an_account_without_locations_are_not_listed_one_by_one() -> None:
    bare = {"account_id": "a", "e911_recommendations": True, "users": [user("u", None)] * 1}
    assert [f.code for f in lint(build(bare))] == [Code.ACCOUNT_WITHOUT_LOCATIONS]


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        ({"addresses": ["10.9.0.0/24"]}, {"addresses": ["10.9.0.0/24"]}, "ambiguous_network"),
        # A range is the CIDRs that cover it: 10.9.0.0-10.9.0.255 is 10.9.0.0/24.
        (
            {"addresses": ["10.9.0.0/24"]},
            {"addresses": ["10.9.0.0-10.9.0.255"]},
            "ambiguous_network",
        ),
        ({"addresses": ["10.9.0.7"]}, {"addresses": ["10.9.0.7/32"]}, "ambiguous_network"),
        ({"addresses": ["2001:db8::/48"]}, {"addresses": ["2001:DB8:0::/48"]}, "ambiguous_network"),
        # Every BSSID spelling is the same access point.
        ({"bssids": ["F0-6E-0B-C2-03-21"]}, {"bssids": ["f06e.0bc2.0321"]}, "ambiguous_bssid"),
        ({"bssids": ["f0:6e:b:c2:3:21"]}, {"bssids": ["f06e0bc20321"]}, "ambiguous_bssid"),
        ({"bssids": ["f0:6e:0b:c2:03:2*"]}, {"bssids": ["F0-6E-0B-C2-03-2*"]}, "ambiguous_bssid"),
        (
            {"switches": [{"chassis_id": "00:1B:54:AA:BB:CC", "port_id": "Gi1/0/12"}]},
            {"switches": [{"chassis_id": "001b.54aa.bbcc", "port_id": "gi1/0/12"}]},
            "ambiguous_switch_port",
        ),
        (
            {"switches": [{"chassis_id": "core-1"}]},
            {"switches": [{"chassis_id": "CORE-1"}]},
            "ambiguous_switch",
        ),
    ],
)
def test_the_same_entry_for_two_locations_is_ambiguous(
    first: dict[str, Any], second: dict[str, Any], code: str
) -> None:
    groups = [
        {**group("a", "hq"), **first},
        {**group("b", "hq"), **first},  # the same location: no tie
        {**group("c", "lab"), **second},
    ]
    (found,) = lint(build(account(ip_groups=[*CLEAN["ip_groups"], *groups])))
    assert (found.code.value, found.path) == (code, "accounts[0].ip_groups[5]")
    assert found.severity is Severity.WARNING
    assert "'a' (accounts[0].ip_groups[3], location 'hq')" in found.message
    assert "'b' (accounts[0].ip_groups[4], location 'hq')" in found.message


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # The longest prefix decides: overlapping is not ambiguous.
        ({"addresses": ["10.9.0.0/16"]}, {"addresses": ["10.9.0.0/24"]}),
        # A range that is not one CIDR is its covering CIDRs, none equal to the /24.
        ({"addresses": ["10.9.0.0/24"]}, {"addresses": ["10.9.0.0-10.9.1.255"]}),
        # An exact BSSID wins over the pattern that covers it.
        ({"bssids": ["f0:6e:0b:c2:03:21"]}, {"bssids": ["f0:6e:0b:c2:03:2*"]}),
        # A port wins over its whole switch.
        (
            {"switches": [{"chassis_id": "core-1", "port_id": "1"}]},
            {"switches": [{"chassis_id": "core-1"}]},
        ),
        (
            {"switches": [{"chassis_id": "core-1", "port_id": "1"}]},
            {"switches": [{"chassis_id": "core-1", "port_id": "2"}]},
        ),
    ],
)
def test_entries_at_different_precedence_are_not_ambiguous(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    groups = [{**group("a", "hq"), **first}, {**group("c", "lab"), **second}]
    assert lint(build(account(ip_groups=[*CLEAN["ip_groups"], *groups]))) == []


def test_groups_that_checks_ignore_do_not_make_a_tie() -> None:
    groups = [
        group("a", "hq", "10.9.0.0/24"),
        group("b", None, "10.9.0.0/24"),
        group("c", "gone", "10.9.0.0/24"),
    ]
    assert codes(build(account(ip_groups=[*CLEAN["ip_groups"], *groups]))) == [
        ("group_without_location", "accounts[0].ip_groups[4]"),
        ("group_location_missing", "accounts[0].ip_groups[5]"),
    ]


def test_a_non_locating_group_listing_a_locating_groups_entry_is_a_tie() -> None:
    groups = [group("a", "hq", "10.9.0.0/24"), group("nat", None, "10.9.0.0/24", locating=False)]
    (found,) = lint(build(account(ip_groups=[*CLEAN["ip_groups"], *groups])))
    assert (found.code, found.path) == (Code.NONLOCATING_TIE, "accounts[0].ip_groups[4]")
    assert "network 10.9.0.0/24" in found.message and "'a'" in found.message


def test_a_tie_masks_the_ambiguity_behind_it() -> None:
    """The non-locating group wins the entry: no location is ever recommended there."""
    groups = [
        group("a", "hq", "10.9.0.0/24"),
        group("b", "lab", "10.9.0.0/24"),
        group("nat", None, "10.9.0.0/24", locating=False),
    ]
    assert [f.code for f in lint(build(account(ip_groups=[*CLEAN["ip_groups"], *groups])))] == [
        Code.NONLOCATING_TIE
    ]


def test_a_location_no_network_leads_to() -> None:
    groups = [
        *CLEAN["ip_groups"],
        group("empty", "attic"),
        group("nat", "attic", "10.8.0.0/16", locating=False),
    ]
    data = account(locations=[*CLEAN["locations"], loc("attic")], ip_groups=groups)
    assert codes(build(data)) == [("location_without_network", "accounts[0].locations[2]")]


def test_enabled_users_without_a_location_are_warned_about() -> None:
    users = [user("on", None, on=True), user("off", None)]
    off = account(e911_recommendations=False, users=users)
    assert codes(build(off)) == [("user_without_location", "accounts[0].users[0]")]
    on = account(users=users)  # the account toggle enables everyone
    assert [p for _, p in codes(build(on))] == ["accounts[0].users[0]", "accounts[0].users[1]"]


def test_findings_come_in_document_order_with_the_documents_indices() -> None:
    a = account(users=[user(f"u{i}", "attic") for i in range(12)])
    b = account(account_id="beta", users=[user("x", "nowhere")])
    directory = build(a, b)
    paths = [f.path for f in lint(directory)]
    assert paths == [*(f"accounts[0].users[{i}]" for i in range(12)), "accounts[1].users[0]"]
    assert [f.path for f in lint(directory, ["beta"])] == ["accounts[1].users[0]"]
    assert lint(directory) == lint(build(a, b))  # deterministic


def test_text_and_json_rendering() -> None:
    findings = lint(build(account(users=[user("u1", "attic"), user("u2", None)])))
    text = render_text(findings, 1).splitlines()
    assert text[0].split()[:4] == ["error", "user_location_missing", "acme", "accounts[0].users[0]"]
    assert text[1].index("accounts[0]") == text[0].index("accounts[0]")  # aligned
    assert text[-1] == "1 error, 1 warning in 1 account"
    assert render_text([], 3) == "no findings in 3 accounts\n"
    import json

    doc = json.loads(render_json(findings, 1))
    assert doc["summary"] == {"errors": 1, "warnings": 1, "accounts": 1}
    assert (
        doc["findings"][0]
        == Finding.of(
            Code.USER_LOCATION_MISSING, "accounts[0].users[0]", "acme", "u1", findings[0].message
        ).as_dict()
    )
    assert set(doc["findings"][1]) == {
        "code", "severity", "path", "account_id", "entity_id", "message",
    }  # fmt: skip
    assert doc["findings"][1]["entity_id"] == "u2"


_ID_KEYS = {"users": "user_id", "locations": "location_id", "ip_groups": "ip_group_id"}


def _entity_at(data: dict[str, Any], path: str) -> str:
    """The id of the entity a finding's path points at, read from the source data."""
    node: Any = data
    key = "account_id"
    for part in path.split("."):
        if part == "address":
            break  # an address finding points into its location
        name, _, index = part.partition("[")
        node = node[name][int(index.rstrip("]"))]
        key = _ID_KEYS.get(name, "account_id")
    return str(node[key])


def test_every_finding_names_its_own_entity_by_id() -> None:
    """A path's index moves when the directory is edited; the id is what a script
    follows, and what the reader of the message looks for."""
    shared = {"addresses": ["10.9.0.0/24"], "bssids": ["f0:6e:0b:c2:03:99"]}
    switches = [{"chassis_id": "core-9", "port_id": "1"}, {"chassis_id": "edge-9"}]
    groups = [
        *CLEAN["ip_groups"],
        {**group("g-a", "hq"), **shared, "switches": switches},
        {**group("g-b", "lab"), **shared, "switches": switches},
        group("g-nat", None, "10.7.0.0/24", locating=False),
        group("g-here", "hq", "10.7.0.0/24"),
        group("g-none", None, "10.6.0.0/24"),
        group("g-gone", "gone", "10.5.0.0/24"),
    ]
    data = {
        "accounts": [
            account(
                locations=[
                    *CLEAN["locations"],
                    loc("attic"),
                    loc("attic-too", unit="attic"),
                    loc("somewhere", street="Main St"),
                ],
                ip_groups=groups,
                users=[user("u-lost", "nowhere"), user("u-none", None)],
            ),
            {"account_id": "bare", "e911_recommendations": True},
        ]
    }
    found = lint(build(*data["accounts"]))
    assert {f.code for f in found} == set(Code)  # every rule is exercised
    for f in found:
        assert f.entity_id == _entity_at(data, f.path), f
        assert repr(f.entity_id) in f.message, f
