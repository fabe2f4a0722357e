"""The directory file (docs/directory.md): parsing, validation, the plan and the export
document, without a database."""

from __future__ import annotations

import ipaddress
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.consumers.wire import MAX_ADDRESSES_PER_GROUP, decode_directory_event
from e911d.daemon.commands.directory_file import (
    MAX_FILE_BYTES,
    DirectoryFile,
    FileProblem,
    Rows,
    Stored,
    export_document,
    load,
    make_plan,
    parse,
    render,
    validate,
)
from e911d.daemon.core.events import (
    AccountUpserted,
    Address,
    Coordinates,
    Invalid,
    IpGroupDeleted,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    UserDeleted,
    UserUpserted,
)
from e911d.daemon.core.network import SwitchRef

EXAMPLE = Path(__file__).parents[2] / "docs" / "directory.example.yaml"


def errors(text: str, fmt: str = "yaml", **kwargs: Any) -> list[str]:
    """The rendered issues of a file text (dedented), in the order the CLI prints them."""
    checked = validate(parse(textwrap.dedent(text), fmt), **kwargs)
    assert (checked.directory is None) == bool(checked.issues)
    return [issue.render("f.yaml") for issue in checked.issues]


def directory(text: str, fmt: str = "yaml", **kwargs: Any) -> DirectoryFile:
    checked = validate(parse(textwrap.dedent(text), fmt), **kwargs)
    assert checked.issues == ()
    assert checked.directory is not None
    return checked.directory


def problem(text: str, fmt: str = "yaml") -> str:
    with pytest.raises(FileProblem) as exc:
        parse(textwrap.dedent(text), fmt)
    return str(exc.value)


LOCATION = "{location_id: hq, name: HQ, address: {street: 1 Main St, city: X, country: US}}"


# ---- the example and the two syntaxes -----------------------------------------------------


def test_the_shipped_example_validates_and_covers_every_form():
    d = validate(load(EXAMPLE)).directory
    assert d is not None
    assert [a.account for a in d.accounts] == [
        AccountUpserted("acme", True),
        AccountUpserted("globex", False),
    ]
    acme = d.accounts[0]
    hq = next(loc for loc in acme.locations if loc.location_id == "hq")
    assert hq.address == Address(
        "100 Main St", "Springfield", "US", "IL", "62701", "2", "3", "Suite 301"
    )
    assert hq.coordinates == Coordinates(39.7817, -89.6501)
    assert any(loc.coordinates is None for loc in acme.locations)
    groups = {g.ip_group_id: g for a in d.accounts for g in a.ip_groups}
    assert groups["vpn"].location_id is None
    assert groups["vpn"].locating is False
    assert groups["denver-office"].bssids == ("f06e0bc2032*", "f06e0bc20410")
    assert groups["denver-office"].switches == (
        SwitchRef("001b54aabbcc", "gi1/0/12"),
        SwitchRef("denver-core-sw"),
    )
    assert groups["hq-lan"].locating and groups["hq-lan"].bssids == ()
    assert groups["denver-office"].addresses == ("192.0.2.10-192.0.2.20", "198.51.100.7")
    assert groups["denver-office"].networks == tuple(
        ipaddress.ip_network(n)
        for n in (
            "192.0.2.10/31",
            "192.0.2.12/30",
            "192.0.2.16/30",
            "192.0.2.20/32",
            "198.51.100.7/32",
        )
    )
    assert ipaddress.ip_network("2001:db8:10::/48") in groups["hq-lan"].networks
    users = {u.user_id: u for a in d.accounts for u in a.users}
    assert users["alice"] == UserUpserted("acme", "alice", False, "hq")  # toggle defaults off
    assert users["bob"].e911_location_id is None
    assert users["frank"] == UserUpserted("globex", "frank", False, None)
    london = next(loc for loc in d.accounts[1].locations if loc.location_id == "london")
    # Region may be left out (the event's default is ""), but a dispatchable address
    # has one (directory lint): the example's addresses are complete.
    assert london.address.region == "England"
    assert hq.address.building == "2"  # building, floor and unit are shown too


def test_json_and_yaml_give_the_same_directory():
    data = load(EXAMPLE)
    as_json = json.dumps(data)
    assert validate(parse(as_json, "json")) == validate(data)


def test_the_format_comes_from_the_extension(tmp_path):
    body = '{"accounts": [{"account_id": "a"}]}'
    for name in ("d.json", "d.yaml", "d.YML"):  # JSON is YAML too
        (tmp_path / name).write_text(body)
        assert validate(load(tmp_path / name)).issues == ()
    (tmp_path / "d.txt").write_text(body)
    with pytest.raises(FileProblem, match=r"extension '\.txt': use \.yaml, \.yml or \.json"):
        load(tmp_path / "d.txt")


# ---- unreadable, oversized, syntax --------------------------------------------------------


def test_a_file_that_cannot_be_read(tmp_path):
    with pytest.raises(FileProblem, match="cannot read the file: No such file or directory"):
        load(tmp_path / "missing.yaml")
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(FileProblem, match="cannot read the file: Is a directory"):
        load(tmp_path / "dir.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"accounts: [caf\xe9]")
    with pytest.raises(FileProblem, match=r"not UTF-8 text \(invalid byte at offset 14\)"):
        load(tmp_path / "latin1.yaml")


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    assert MAX_FILE_BYTES == 64 * 1024 * 1024
    big = tmp_path / "big.yaml"
    big.write_text("accounts: []\n" + "#" * 100)
    with pytest.raises(FileProblem, match="larger than the limit of 100 bytes"):
        load(big, max_bytes=100)
    assert load(big, max_bytes=200) == {"accounts": []}


def test_yaml_syntax_errors_name_the_line():
    text = """\
        accounts:
          - account_id: a
            users: [
        """
    assert problem(text) == (
        "invalid YAML at line 4, column 1: expected the node content, but found "
        "'<stream end>' (while parsing a flow node)"
    )
    assert problem("accounts:\n  - a: 1\n  b: 2\n").startswith("invalid YAML at line 3, column 3")


def test_json_syntax_errors_name_the_line():
    assert problem('{"accounts": [\n  {"account_id": "a",}\n]}', "json") == (
        "invalid JSON at line 2, column 22: Expecting property name enclosed in double quotes"
    )


def test_yaml_anchors_and_aliases_are_refused():
    laughs = "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"
    assert problem(laughs) == (
        "invalid YAML at line 1, column 4: "
        "YAML anchors and aliases (& and *) are not allowed in a directory file"
    )
    assert "anchors and aliases" in problem("accounts: &unused []\n")
    assert "anchors and aliases" in problem("accounts: *undefined\n")
    assert problem("a: {x: 1}\nb:\n  <<: {x: 2}\n") == (
        "invalid YAML at line 3, column 3: YAML merge keys (<<) are not allowed"
    )


def test_yaml_is_loaded_safely():
    assert "could not determine a constructor" in problem("accounts: !!python/object:os.system {}")
    assert "line 1, column 11" in problem("accounts: !custom []")


def test_keys_given_twice_are_reported_in_yaml_and_json():
    yaml_text = f"""\
        accounts:
          - account_id: a
            locations: [{LOCATION}]
            users:
              - user_id: u
                e911_location_id: elsewhere
                e911_location_id: hq
        """
    assert errors(yaml_text) == [
        "accounts[0].users[0].e911_location_id: key given more than once (only one value can count)"
    ]
    assert errors('{"accounts": [], "accounts": []}', "json") == [
        "accounts: key given more than once (only one value can count)"
    ]


# ---- shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "f.yaml: the file is empty; expected a mapping with the key 'accounts'"),
        ("- a\n", "f.yaml: the file holds a list; expected a mapping with the key 'accounts'"),
        ("hello\n", "f.yaml: the file holds 'hello'; expected a mapping with the key 'accounts'"),
        ("{}\n", "f.yaml: missing required key 'accounts'"),
        ("accounts: {a: 1}\n", "accounts: expected a list, got a mapping"),
        ("accounts: [1]\n", "accounts[0]: expected a mapping, got 1"),
    ],
)
def test_the_top_level(text, expected):
    assert errors(text) == [expected]


def test_unknown_keys_are_refused_with_their_path():
    text = """\
        acounts: []
        accounts:
          - account_id: a
            e911_recomendations: true
            location: []
            locations:
              - location_id: hq
                name: HQ
                adress: {}
                address: {street: s, city: c, country: US, zip: "1"}
                coordinates: {lat: 1, lon: 2, alt: 3}
            ip_groups: [{ip_group_id: g, name: G, addresses: [], "weird key": 1}]
            users: [{user_id: u, location_id: hq}]
        """
    assert errors(text) == [
        "accounts[0].e911_recomendations: unknown key; did you mean 'e911_recommendations'?",
        "accounts[0].ip_groups[0]['weird key']: unknown key; "
        "allowed: ip_group_id, name, addresses, location_id, bssids, switches, locating",
        "accounts[0].location: unknown key; did you mean 'locations'?",
        "accounts[0].locations[0].address.zip: unknown key; "
        "allowed: street, city, country, region, postal_code, building, floor, unit",
        "accounts[0].locations[0].adress: unknown key; did you mean 'address'?",
        "accounts[0].locations[0].coordinates.alt: unknown key; did you mean 'lat'?",
        "accounts[0].users[0].location_id: unknown key; did you mean 'e911_location_id'?",
        "acounts: unknown key; did you mean 'accounts'?",
    ]


def test_missing_required_keys():
    text = """\
        accounts:
          - e911_recommendations: true
          - account_id: a
            locations:
              - {location_id: hq, address: {city: c, country: US}, coordinates: {lat: 1}}
              - {location_id: lab, name: Lab}
            ip_groups: [{ip_group_id: g}]
            users: [{e911_location_id: hq}]
        """
    assert errors(text) == [
        "accounts[0]: missing required key 'account_id'",
        "accounts[1].ip_groups[0]: missing required key 'name'",
        "accounts[1].ip_groups[0]: missing required key 'addresses'",
        "accounts[1].locations[0]: missing required key 'name'",
        "accounts[1].locations[0].address: missing required key 'street'",
        "accounts[1].locations[0].coordinates: missing required key 'lon'",
        "accounts[1].locations[1]: missing required key 'address'",
        "accounts[1].users[0]: missing required key 'user_id'",
    ]


def test_optional_keys_take_the_defaults_and_null_means_none():
    d = directory(
        f"""\
        accounts:
          - account_id: a
            locations: [{LOCATION}]
            ip_groups: [{{ip_group_id: g, name: "", addresses: [], location_id: null}}]
            users: [{{user_id: u, e911_location_id: null}}, {{user_id: v}}]
        """
    )
    (entry,) = d.accounts
    assert entry.account == AccountUpserted("a", False)
    assert entry.locations[0].coordinates is None
    assert entry.locations[0].address == Address("1 Main St", "X", "US", "", "")
    assert entry.ip_groups == (IpGroupUpserted("a", "g", "", None, (), ()),)
    assert entry.users == (UserUpserted("a", "u", False, None), UserUpserted("a", "v", False, None))


def test_an_account_without_lists_is_valid():
    assert (
        directory("accounts: [{account_id: a, e911_recommendations: true}]").accounts[0].locations
        == ()
    )
    assert directory("accounts: []") == DirectoryFile(())


# ---- types ----------------------------------------------------------------------------------


def test_wrong_types_name_what_was_expected_and_what_was_found():
    text = """\
        accounts:
          - account_id: a
            e911_recommendations: "yes"
            locations:
              - location_id: hq
                name: [HQ]
                address: 1 Main St
                coordinates: {lat: "39.8", lon: true}
            ip_groups:
              - {ip_group_id: g, name: G, addresses: 203.0.113.0/24, location_id: 7}
            users: {user_id: u}
        """
    assert errors(text) == [
        "accounts[0].e911_recommendations: expected a boolean, got 'yes'",
        "accounts[0].ip_groups[0].addresses: expected a list, got '203.0.113.0/24'",
        "accounts[0].ip_groups[0].location_id: expected a string, got 7; "
        "YAML reads the unquoted 7 as a number: put it in quotes",
        "accounts[0].locations[0].address: expected a mapping, got '1 Main St'",
        "accounts[0].locations[0].coordinates.lat: expected a number, got '39.8'",
        "accounts[0].locations[0].coordinates.lon: expected a number, got true",
        "accounts[0].locations[0].name: expected a string, got a list",
        "accounts[0].users: expected a list, got a mapping",
    ]


def test_yaml_scalars_that_are_not_strings_get_a_quoting_hint():
    text = """\
        accounts:
          - account_id: 2024-01-01
            locations:
              - location_id: yes
                name: null
                address: {street: s, city: c, postal_code: 01234, country: NO}
            ip_groups: [{ip_group_id: g, name: G, addresses: [2001:0:0:0:0:0:0:1]}]
        """
    assert errors(text) == [
        "accounts[0].account_id: expected a string, got 2024-01-01 (a date); "
        "YAML reads the unquoted 2024-01-01 as a date: put it in quotes",
        "accounts[0].ip_groups[0].addresses[0]: expected a string, got 5601519360000001; "
        "YAML reads the unquoted 2001:0:0:0:0:0:0:1 as a number: put it in quotes",
        "accounts[0].locations[0].address.country: expected a string, got false; "
        "YAML reads the unquoted NO as a boolean: put it in quotes",
        "accounts[0].locations[0].address.postal_code: expected a string, got 668; "
        "YAML reads the unquoted 01234 as a number: put it in quotes",
        "accounts[0].locations[0].location_id: expected a string, got true; "
        "YAML reads the unquoted yes as a boolean: put it in quotes",
        "accounts[0].locations[0].name: expected a string, got null; "
        "YAML reads the unquoted null as null: put it in quotes",
    ]


def test_json_types_are_taken_as_written():
    text = json.dumps(
        {
            "accounts": [
                {
                    "account_id": "a",
                    "e911_recommendations": 1,
                    "locations": [
                        {
                            "location_id": "hq",
                            "name": "HQ",
                            "address": {"street": "s", "city": "c", "country": "US"},
                            "coordinates": {"lat": 40, "lon": -89.5},
                        }
                    ],
                }
            ]
        }
    )
    assert errors(text, "json") == ["accounts[0].e911_recommendations: expected a boolean, got 1"]
    ok = text.replace('"e911_recommendations": 1', '"e911_recommendations": true')
    assert directory(ok, "json").accounts[0].locations[0].coordinates == Coordinates(40.0, -89.5)
    nan = ok.replace('"lat": 40', '"lat": NaN')
    assert errors(nan, "json") == [
        "accounts[0].locations[0].coordinates.lat: nan is not a finite number"
    ]


# ---- the event rules -----------------------------------------------------------------------


def test_ids_and_names_obey_the_event_limits():
    long_id = "x" * 257
    text = f"""\
        accounts:
          - account_id: ""
          - account_id: "a\\tb"
          - account_id: {long_id}
            locations:
              - location_id: hq
                name: ""
                address: {{street: "{"s" * 513}", city: "line\\nbreak", country: "bell\\x07"}}
                coordinates: {{lat: 90.5, lon: -180.5}}
            users: [{{user_id: "x" , e911_location_id: ""}}]
        """
    assert errors(text) == [
        "accounts[0].account_id: must not be empty",
        "accounts[1].account_id: contains the character '\\t', which is not allowed here",
        "accounts[2].account_id: is 257 characters long; the limit is 256",
        "accounts[2].locations[0].address.country: "
        "contains the character '\\x07', which is not allowed here",
        "accounts[2].locations[0].address.street: is 513 characters long; the limit is 512",
        "accounts[2].locations[0].coordinates.lat: 90.5 is out of range: "
        "must be between -90 and 90",
        "accounts[2].locations[0].coordinates.lon: -180.5 is out of range: "
        "must be between -180 and 180",
        "accounts[2].locations[0].name: must not be empty",
        "accounts[2].users[0].e911_location_id: must not be empty",
    ]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("10.0.0.300", "'10.0.0.300' is not an IP address"),
        ("010.0.0.1", "'010.0.0.1' is not an IP address"),
        ("fe80::1%eth0", "'fe80::1%eth0' is not an IP address"),
        ("fe80::/64%eth0", "'fe80::/64%eth0' is not a CIDR"),
        ("10.0.0.1/24", "'10.0.0.1/24' is not a CIDR: 10.0.0.1/24 has host bits set"),
        ("192.0.2.20-192.0.2.10", "'192.0.2.20-192.0.2.10' is an empty range (start after end)"),
        ("192.0.2.1-2001:db8::1", "'192.0.2.1-2001:db8::1' mixes IPv4 and IPv6"),
        ("", "'' is not an IP address"),
        (" 10.0.0.1", "' 10.0.0.1' is not an IP address"),
    ],
)
def test_bad_addresses_are_refused_as_the_events_refuse_them(item, message):
    data = {
        "accounts": [
            {
                "account_id": "a",
                "ip_groups": [
                    {"ip_group_id": "g", "name": "G", "addresses": ["203.0.113.0/24", item]}
                ],
            }
        ]
    }
    assert errors(json.dumps(data), "json") == [f"accounts[0].ip_groups[0].addresses[1]: {message}"]


def test_more_addresses_than_an_event_may_carry_are_refused():
    addresses = [f"10.{i // 256 % 256}.{i % 256}.0/24" for i in range(MAX_ADDRESSES_PER_GROUP + 1)]
    data = {
        "accounts": [
            {
                "account_id": "a",
                "ip_groups": [{"ip_group_id": "g", "name": "G", "addresses": addresses}],
            }
        ]
    }
    assert errors(json.dumps(data), "json") == [
        f"accounts[0].ip_groups[0].addresses: has {MAX_ADDRESSES_PER_GROUP + 1} items; "
        f"the limit is {MAX_ADDRESSES_PER_GROUP}"
    ]
    data["accounts"][0]["ip_groups"][0]["addresses"] = addresses[:-1]
    assert errors(json.dumps(data), "json") == []


def _event_accepts(data: dict[str, Any], type_: str) -> bool:
    body = {"specversion": "1.0", "id": "1", "source": "urn:t", "type": type_, "data": data}
    return not isinstance(decode_directory_event(json.dumps(body).encode(), 10**7), Invalid)


address_items = st.one_of(
    st.text(alphabet="0123456789abcdef.:/-% ", max_size=40),
    st.ip_addresses().map(str),
    st.builds(lambda a, b: f"{a}-{b}", st.ip_addresses(v=4), st.ip_addresses(v=4)),
    st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(), st.integers(0, 130)),
)


@settings(max_examples=300, deadline=None)
@given(item=address_items)
def test_an_address_item_is_valid_in_a_file_exactly_when_it_is_in_an_event(item):
    group = {"ip_group_id": "g", "name": "G", "addresses": [item]}
    in_file = errors(json.dumps({"accounts": [{"account_id": "a", "ip_groups": [group]}]}), "json")
    assert (in_file == []) == _event_accepts({"account_id": "a", **group}, "e911.ip_group.upserted")


@settings(max_examples=300, deadline=None)
@given(ident=st.text(max_size=300), name=st.text(max_size=600))
def test_ids_and_names_are_valid_in_a_file_exactly_when_they_are_in_an_event(ident, name):
    location = {
        "location_id": ident,
        "name": name,
        "address": {"street": name, "city": "c", "country": "US"},
    }
    in_file = errors(
        json.dumps({"accounts": [{"account_id": "a", "locations": [location]}]}), "json"
    )
    event = _event_accepts({"account_id": "a", **location}, "e911.location.upserted")
    assert (in_file == []) == event


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(
        st.sampled_from(["a", " ", "\t", "\n", "\x85", "\u2028", "\u2029", "\ufeff", "'", '"'])
        | st.characters(),
        min_size=1,
        max_size=20,
    )
)
def test_any_valid_string_survives_an_export_in_both_syntaxes(name):
    """YAML folds some line breaks (NEL, LS, PS) outside double quotes: a name must
    come back exactly, or a re-import would rename (and --prune delete) an entity."""
    location = {
        "location_id": name,
        "name": name,
        "address": {"street": name, "city": "c", "country": "US"},
    }
    doc = {"accounts": [{"account_id": name, "locations": [location]}]}
    if errors(json.dumps(doc), "json"):
        return  # not a valid id or name to begin with
    for fmt in ("yaml", "json"):
        back = parse(render(doc, fmt), fmt)
        assert back == doc, fmt


# ---- duplicates and references ------------------------------------------------------------


def test_duplicate_ids():
    text = f"""\
        accounts:
          - account_id: acme
            locations:
              - {LOCATION}
              - {LOCATION.replace("hq", "lab")}
              - {LOCATION.replace("hq", "home")}
              - {LOCATION}
            ip_groups:
              - {{ip_group_id: g, name: G, addresses: []}}
              - {{ip_group_id: g, name: G2, addresses: []}}
            users: [{{user_id: u}}, {{user_id: v}}, {{user_id: u}}]
          - account_id: globex
            users: [{{user_id: u}}]
          - account_id: acme
        """
    assert errors(text) == [
        "accounts[0].ip_groups[1].ip_group_id: duplicate 'g' (also at accounts[0].ip_groups[0])",
        "accounts[0].locations[3].location_id: duplicate 'hq' (also at accounts[0].locations[0])",
        "accounts[0].users[2].user_id: duplicate 'u' (also at accounts[0].users[0])",
        "accounts[2].account_id: duplicate 'acme' (also at accounts[0])",
    ]


REFERENCES = f"""\
    accounts:
      - account_id: acme
        locations: [{LOCATION}]
        ip_groups:
          - {{ip_group_id: g, name: G, addresses: [], location_id: hq}}
          - {{ip_group_id: h, name: H, addresses: [], location_id: lab}}
        users: [{{user_id: u, e911_location_id: hq}}]
      - account_id: globex
        users:
          - {{user_id: u, e911_location_id: nowhere}}
          - {{user_id: v, e911_location_id: hq}}
    """


def test_references_must_name_a_location_of_the_same_account():
    assert errors(REFERENCES) == [
        "accounts[0].ip_groups[1].location_id: 'lab' names no location of account 'acme'",
        "accounts[1].users[0].e911_location_id: 'nowhere' names no location of account 'globex'",
        "accounts[1].users[1].e911_location_id: 'hq' names no location of account 'globex'",
    ]


def test_references_may_name_a_location_the_database_holds_unless_pruning():
    db = {"acme": {"lab"}, "globex": {"nowhere", "hq"}}
    assert errors(REFERENCES, db_locations=db) == []
    assert errors(REFERENCES, db_locations=db, prune=True) == [
        "accounts[0].ip_groups[1].location_id: 'lab' names no location of account 'acme' in "
        "the file (with --prune the database's locations do not count)",
        "accounts[1].users[0].e911_location_id: 'nowhere' names no location of account "
        "'globex' in the file (with --prune the database's locations do not count)",
        "accounts[1].users[1].e911_location_id: 'hq' names no location of account "
        "'globex' in the file (with --prune the database's locations do not count)",
    ]


def test_a_bad_location_still_counts_for_references_so_errors_do_not_cascade():
    text = """\
        accounts:
          - account_id: a
            locations: [{location_id: hq, name: "", address: {street: s, city: c, country: US}}]
            users: [{user_id: u, e911_location_id: hq}]
        """
    assert errors(text) == ["accounts[0].locations[0].name: must not be empty"]


def test_every_error_of_a_file_is_reported_at_once_sorted_by_path():
    text = """\
        accounts:
          - account_id: acme
            e911_recommendations: true
            locations:
              - location_id: hq
                name: Headquarters
                address: {street: 100 Main St, city: Springfield, country: US}
            ip_groups:
              - ip_group_id: hq-lan
                name: HQ LAN
                location_id: hq
                addresses: [203.0.113.0/24, 198.51.100.7, 10.0.0.300, 10.0.0.1/24]
            users:
              - {user_id: alice, e911_location_id: hq}
              - {user_id: bob, e911_recommendations: "no", e911_location: hq}
          - account_id: globex
            locations:
              - location_id: x
                name: X
                address: {street: s, city: c, country: US}
                coordinates: {lat: 1, lon: 200}
            users: [{user_id: carol, e911_location_id: nowhere}]
          - 7
        """
    assert errors(text) == [
        "accounts[0].ip_groups[0].addresses[2]: '10.0.0.300' is not an IP address",
        "accounts[0].ip_groups[0].addresses[3]: '10.0.0.1/24' is not a CIDR: "
        "10.0.0.1/24 has host bits set",
        "accounts[0].users[1].e911_location: unknown key; did you mean 'e911_location_id'?",
        "accounts[0].users[1].e911_recommendations: expected a boolean, got 'no'",
        "accounts[1].locations[0].coordinates.lon: 200 is out of range: "
        "must be between -180 and 180",
        "accounts[1].users[0].e911_location_id: 'nowhere' names no location of account 'globex'",
        "accounts[2]: expected a mapping, got 7",
    ]


# ---- the plan ---------------------------------------------------------------------------------


def _rows(**tables: list[dict[str, Any]]) -> Rows:
    names = ("accounts", "locations", "ip_groups", "networks", "users")
    return Rows(**{n: tuple(tables.get(n, [])) for n in names})


# The ip_groups columns of the network signals, as a group without any holds them.
NO_SIGNALS: dict[str, Any] = {"bssids": [], "switches": [], "locating": True}
HQ_ROW = {
    "account_id": "acme",
    "location_id": "hq",
    "name": "HQ",
    "address": {
        "postal_code": "",
        "region": "",
        "country": "US",
        "city": "X",
        "street": "1 Main St",
    },
    "lat": None,
    "lon": None,
}
PLAN_FILE = f"""\
    accounts:
      - account_id: acme
        locations: [{LOCATION}]
        ip_groups:
          - {{ip_group_id: g, name: G, addresses: [192.0.2.10-192.0.2.11], location_id: hq}}
        users: [{{user_id: u, e911_location_id: hq}}]
    """


def test_the_plan_writes_only_what_differs():
    rows = _rows(
        accounts=[{"account_id": "acme", "e911_recommendations": False}],
        locations=[HQ_ROW],
        ip_groups=[
            {
                "account_id": "acme",
                "ip_group_id": "g",
                "name": "G",
                "location_id": "hq",
                **NO_SIGNALS,
                "addresses": ["192.0.2.10-192.0.2.11"],
            }
        ],
        networks=[{"account_id": "acme", "ip_group_id": "g", "network": "192.0.2.10/31"}],
        users=[
            {
                "account_id": "acme",
                "user_id": "u",
                "e911_recommendations": False,
                "e911_location_id": "hq",
            }
        ],
    )
    plan = make_plan(directory(PLAN_FILE), Stored.of(rows), prune=False)
    assert plan.steps == ()
    assert plan.summary() == (
        "accounts: 0 created, 0 updated, 1 unchanged; "
        "locations: 0 created, 0 updated, 1 unchanged, 0 deleted; "
        "ip_groups: 0 created, 0 updated, 1 unchanged, 0 deleted; "
        "users: 0 created, 0 updated, 1 unchanged, 0 deleted"
    )


def test_the_plan_updates_what_differs_including_networks_written_by_other_systems():
    rows = _rows(
        accounts=[{"account_id": "acme", "e911_recommendations": True}],
        locations=[{**HQ_ROW, "address": {**HQ_ROW["address"], "city": "Y"}}],
        ip_groups=[
            {
                "account_id": "acme",
                "ip_group_id": "g",
                "name": "G",
                "location_id": "hq",
                **NO_SIGNALS,
                "addresses": ["192.0.2.10-192.0.2.11"],
            }
        ],
        networks=[{"account_id": "acme", "ip_group_id": "g", "network": "192.0.2.0/24"}],
        users=[
            {
                "account_id": "acme",
                "user_id": "u",
                "e911_recommendations": True,
                "e911_location_id": "hq",
            }
        ],
    )
    plan = make_plan(directory(PLAN_FILE), Stored.of(rows), prune=False)
    assert [s.line for s in plan.steps] == [
        "~ account acme",
        "~ location acme/hq",
        "~ ip_group acme/g",
        "~ user acme/u",
    ]


def test_the_plan_creates_and_with_prune_deletes_what_the_file_omits():
    rows = _rows(
        locations=[HQ_ROW, {**HQ_ROW, "location_id": "old"}, {**HQ_ROW, "account_id": "other"}],
        ip_groups=[
            {
                "account_id": "acme",
                "ip_group_id": "old-lan",
                "name": "",
                "location_id": None,
                **NO_SIGNALS,
                "addresses": [],
            }
        ],
        users=[
            {
                "account_id": "acme",
                "user_id": "gone",
                "e911_recommendations": False,
                "e911_location_id": None,
            }
        ],
    )
    stored = Stored.of(rows)
    kept = make_plan(directory(PLAN_FILE), stored, prune=False)
    assert [s.line for s in kept.steps] == [
        "+ account acme",
        "+ ip_group acme/g",
        "+ user acme/u",
    ]
    pruned = make_plan(directory(PLAN_FILE), stored, prune=True)
    assert [(s.line, s.change) for s in pruned.steps if s.op == "-"] == [
        ("- location acme/old", LocationDeleted("acme", "old")),
        ("- ip_group acme/old-lan", IpGroupDeleted("acme", "old-lan")),
        ("- user acme/gone", UserDeleted("acme", "gone")),
    ]
    assert "locations: 0 created, 0 updated, 1 unchanged, 1 deleted" in pruned.summary()
    assert all(s.account_id == "acme" for s in pruned.steps)  # never another account


# ---- export ------------------------------------------------------------------------------------


def test_the_export_document_round_trips_through_both_syntaxes():
    rows = _rows(
        accounts=[{"account_id": "acme", "e911_recommendations": True}],
        locations=[{**HQ_ROW, "lat": 39.8, "lon": -89.6}, {**HQ_ROW, "location_id": "a-lab"}],
        ip_groups=[
            {
                "account_id": "acme",
                "ip_group_id": "g",
                "name": "G",
                "location_id": None,
                **NO_SIGNALS,
                "addresses": ["2001:0:0:0:0:0:0:1", "192.0.2.10-192.0.2.11"],
            }
        ],
        networks=[
            {"account_id": "acme", "ip_group_id": "g", "network": n}
            for n in ("2001::1/128", "192.0.2.10/31")
        ],
        users=[
            {
                "account_id": "acme",
                "user_id": "u",
                "e911_recommendations": False,
                "e911_location_id": "hq",
            }
        ],
    )
    exported = export_document(rows)
    account = exported.document["accounts"][0]
    assert [loc["location_id"] for loc in account["locations"]] == ["a-lab", "hq"]
    assert "coordinates" not in account["locations"][0]
    assert account["locations"][1]["coordinates"] == {"lat": 39.8, "lon": -89.6}
    assert list(account["locations"][1]["address"]) == [
        "street",
        "city",
        "region",
        "postal_code",
        "country",
    ]
    for fmt in ("yaml", "json"):
        text = render(exported.document, fmt)
        assert "&" not in text and "*" not in text
        d = validate(parse(text, fmt)).directory
        assert d is not None
        assert make_plan(d, Stored.of(rows), prune=True).steps == ()


def test_the_export_skips_orphans_and_reports_dangling_references():
    rows = _rows(
        accounts=[{"account_id": "acme", "e911_recommendations": True}],
        locations=[HQ_ROW, {**HQ_ROW, "account_id": "ghost"}],
        users=[
            {
                "account_id": "acme",
                "user_id": "u",
                "e911_recommendations": False,
                "e911_location_id": "gone",
            },
            {
                "account_id": "ghost",
                "user_id": "x",
                "e911_recommendations": False,
                "e911_location_id": None,
            },
            {
                "account_id": "ghost2",
                "user_id": "y",
                "e911_recommendations": False,
                "e911_location_id": None,
            },
        ],
    )
    exported = export_document(rows)
    assert [a["account_id"] for a in exported.document["accounts"]] == ["acme"]
    assert exported.orphans == {"locations": 1, "users": 2}
    assert exported.orphan_accounts == {"ghost", "ghost2"}
    assert exported.dangling == ("acme: user u -> 'gone'",)


def test_location_changes_compare_the_address_as_a_mapping():
    d = directory(PLAN_FILE)
    reordered = {**HQ_ROW, "address": dict(reversed(list(HQ_ROW["address"].items())))}
    stored = Stored.of(_rows(locations=[reordered]))
    assert [s.line for s in make_plan(d, stored, prune=False).steps if s.kind == "location"] == []
    location = d.accounts[0].locations[0]
    assert location == LocationUpserted("acme", "hq", "HQ", Address("1 Main St", "X", "US"), None)


def test_odd_yaml_keys_and_empty_values_are_reported_plainly():
    text = """\
        accounts:
          - account_id: a
            1: x
            "two words": y
            users: [{user_id: }]
            locations:
              - {account_id: a, location_id: l, name: L, address: {street: s, city: c, country: US}}
        """
    assert errors(text) == [
        "accounts[0]['two words']: unknown key; allowed: account_id, e911_recommendations, "
        "locations, ip_groups, users",
        "accounts[0].<1>: unknown key; allowed: account_id, e911_recommendations, locations, "
        "ip_groups, users",
        "accounts[0].locations[0].account_id: unknown key; "
        "allowed: location_id, name, address, coordinates",
        "accounts[0].users[0].user_id: expected a string, got null",
    ]


def test_a_group_written_with_networks_only_exports_them_and_round_trips():
    """Another system may fill in ip_group_networks and leave addresses empty."""
    rows = _rows(
        accounts=[{"account_id": "acme", "e911_recommendations": False}],
        ip_groups=[
            {
                "account_id": "acme",
                "ip_group_id": "g",
                "name": "G",
                "location_id": None,
                **NO_SIGNALS,
                "addresses": [],
            }
        ],
        networks=[
            {"account_id": "acme", "ip_group_id": "g", "network": n}
            for n in ("2001:db8::/48", "198.51.100.0/24", "10.0.0.0/8")
        ],
    )
    exported = export_document(rows)
    group = exported.document["accounts"][0]["ip_groups"][0]
    assert group["addresses"] == ["10.0.0.0/8", "198.51.100.0/24", "2001:db8::/48"]
    d = validate(parse(render(exported.document, "yaml"), "yaml")).directory
    assert d is not None
    assert make_plan(d, Stored.of(rows), prune=True).steps == ()
