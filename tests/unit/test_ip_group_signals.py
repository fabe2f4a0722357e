"""An IP group's network signals (bssids, switches, locating) in events and directory files.

The file import decodes each entity with the event structs, so the two are tested
side by side: whatever an event refuses, a file refuses with the path of the value.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.consumers.wire import (
    MAX_BSSIDS_PER_GROUP,
    MAX_SWITCHES_PER_GROUP,
    decode_directory_event,
)
from e911d.daemon.commands.directory_file import (
    Rows,
    Stored,
    export_document,
    make_plan,
    parse,
    render,
    validate,
)
from e911d.daemon.core.events import Invalid, InvalidReason, IpGroupUpserted
from e911d.daemon.core.network import SwitchRef
from e911d.daemon.store.directory import bssids_of, switches_doc, switches_of

GROUP: dict[str, Any] = {"account_id": "acme", "ip_group_id": "g", "name": "G", "addresses": []}


def decode(**fields: Any) -> IpGroupUpserted | Invalid:
    body = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:test",
        "type": "e911.ip_group.upserted",
        "data": {**GROUP, **fields},
    }
    ev = decode_directory_event(json.dumps(body).encode(), 4 << 20)
    if isinstance(ev, Invalid):
        return ev
    assert isinstance(ev.change, IpGroupUpserted)
    return ev.change


def group(**fields: Any) -> IpGroupUpserted:
    change = decode(**fields)
    assert isinstance(change, IpGroupUpserted), change
    return change


def refused(**fields: Any) -> str:
    change = decode(**fields)
    assert isinstance(change, Invalid), change
    assert change.reason is InvalidReason.INVALID_DATA
    return change.detail


# ---- events ---------------------------------------------------------------------------------


def test_a_group_without_signals_is_locating_and_has_none():
    g = group(addresses=["10.0.0.0/8"])
    assert (g.bssids, g.switches, g.locating) == ((), (), True)


@pytest.mark.parametrize(
    "spelling",
    ["f0:6e:0b:c2:03:21", "F0-6E-0B-C2-03-21", "f06e.0bc2.0321", "F06E0BC20321", "f0:6e:b:c2:3:21"],
)
def test_every_common_bssid_spelling_is_normalised(spelling):
    assert group(bssids=[spelling]).bssids == ("f06e0bc20321",)


def test_bssids_are_deduplicated_in_order_and_keep_a_wildcard():
    g = group(
        bssids=["F0:6E:0B:C2:03:2*", "00:11:22:33:44:55", "f0-6e-0b-c2-03-2*", "001122334455"]
    )
    assert g.bssids == ("f06e0bc2032*", "001122334455")


def test_switches_are_normalised_and_deduplicated_in_order():
    g = group(
        switches=[
            {"chassis_id": "00-1B-54-AA-BB-CC", "port_id": " Gi1/0/12 "},
            {"chassis_id": "Core-SW1.example"},
            {"chassis_id": "001b.54aa.bbcc", "port_id": "GI1/0/12"},
            {"chassis_id": "core-sw1.example", "port_id": None},
        ],
        locating=False,
    )
    assert g.switches == (SwitchRef("001b54aabbcc", "gi1/0/12"), SwitchRef("core-sw1.example"))
    assert g.locating is False


def test_a_group_may_be_located_by_signals_alone():
    g = group(bssids=["f0:6e:0b:c2:03:21"])
    assert g.networks == () and g.addresses == ()


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"bssids": ["f0:6e:0b:c2:03:21", "zz"]}, "bssids[1]: 'zz' is not a MAC address"),
        ({"bssids": ["f0:6e:0b:c2:03:*"]}, "bssids[0]: "),  # the star must follow a digit
        ({"bssids": ["f0:6e:0b:c2:0*:21"]}, "bssids[0]: "),
        ({"bssids": ["f0:6e:0b:c2:03:21:00"]}, "bssids[0]: "),
        ({"bssids": ["g0:6e:0b:c2:03:21"]}, "bssids[0]: "),
        ({"bssids": ["\x00\u202e" * 3]}, "bssids[0]: "),
        ({"bssids": [" "]}, "bssids[0]: "),
        ({"switches": [{"chassis_id": "   "}]}, "switches[0].chassis_id: is blank"),
        ({"switches": [{"chassis_id": "sw", "port_id": " "}]}, "switches[0].port_id: is blank"),
    ],
)
def test_a_bad_signal_is_invalid_data_with_its_path(fields, detail):
    assert refused(**fields).startswith(detail)


@pytest.mark.parametrize(
    "fields",
    [
        {"bssids": "f0:6e:0b:c2:03:21"},
        {"bssids": [1]},
        {"bssids": [None]},
        {"bssids": ["f" * 65]},
        {"switches": {"chassis_id": "sw"}},
        {"switches": ["sw"]},
        {"switches": [{"port_id": "gi1"}]},
        {"switches": [{"chassis_id": ""}]},
        {"switches": [{"chassis_id": "sw\n1"}]},
        {"switches": [{"chassis_id": "s" * 257}]},
        {"switches": [{"chassis_id": 7}]},
        {"locating": "false"},
        {"locating": 0},
        {"locating": None},
        {"addresses": None, "bssids": ["f0:6e:0b:c2:03:21"]},  # addresses stays required
    ],
)
def test_wrong_types_are_invalid_data(fields):
    assert refused(**fields)


def test_oversized_lists_are_refused():
    assert "bssids" in refused(bssids=["001122334455"] * (MAX_BSSIDS_PER_GROUP + 1))
    assert "switches" in refused(switches=[{"chassis_id": "s"}] * (MAX_SWITCHES_PER_GROUP + 1))
    assert len(group(bssids=["001122334455"] * MAX_BSSIDS_PER_GROUP).bssids) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=70), max_size=5))
def test_any_bssid_list_decodes_or_is_refused_never_crashes(items):
    change = decode(bssids=items)
    if isinstance(change, IpGroupUpserted):
        assert all(len(b) == 12 for b in change.bssids)
        assert all(set(b[:11]) <= set("0123456789abcdef") for b in change.bssids)
    else:
        assert change.reason is InvalidReason.INVALID_DATA


# ---- storage forms ----------------------------------------------------------------------------


def test_switches_survive_their_stored_form():
    switches = (SwitchRef("001b54aabbcc", "gi1/0/12"), SwitchRef("core-sw1"))
    doc = switches_doc(switches)
    assert doc == [
        {"chassis_id": "001b54aabbcc", "port_id": "gi1/0/12"},
        {"chassis_id": "core-sw1"},
    ]
    assert switches_of(doc) == switches


def test_loading_normalises_what_another_writer_stored_and_skips_what_is_no_signal():
    assert bssids_of(["F0-6E-0B-C2-03-21", "junk", "f06e0bc20321", "00:11:22:33:44:5*"]) == (
        "f06e0bc20321",
        "00112233445*",
    )
    assert bssids_of(None) == ()
    stored = [{"chassis_id": "00:1B:54:AA:BB:CC", "port_id": "Gi1"}, {"port_id": "x"}, 7, {}]
    assert switches_of(stored) == (SwitchRef("001b54aabbcc", "gi1"),)
    assert switches_of({"chassis_id": "x"}) == ()


# ---- directory files ------------------------------------------------------------------------


def errors(text: str) -> list[str]:
    return [f"{i.path}: {i.message}" for i in validate(parse(textwrap.dedent(text), "yaml")).issues]


LOCATION = "{location_id: hq, name: HQ, address: {street: 1 Main St, city: X, country: US}}"
FILE = f"""\
    accounts:
      - account_id: acme
        locations: [{LOCATION}]
        ip_groups:
          - ip_group_id: hq-wifi
            name: HQ Wi-Fi
            location_id: hq
            addresses: []
            bssids: ["F0-6E-0B-C2-03-2*", f06e.0bc2.0410]
            switches:
              - {{chassis_id: "00:1b:54:aa:bb:cc", port_id: Gi1/0/12}}
              - {{chassis_id: Core-SW1}}
          - ip_group_id: vpn
            name: VPN egress
            addresses: [203.0.113.0/28]
            locating: false
    """


def test_a_file_carries_the_signals_normalised():
    d = validate(parse(textwrap.dedent(FILE), "yaml")).directory
    assert d is not None
    wifi, vpn = d.accounts[0].ip_groups
    assert wifi.bssids == ("f06e0bc2032*", "f06e0bc20410")
    assert wifi.switches == (SwitchRef("001b54aabbcc", "gi1/0/12"), SwitchRef("core-sw1"))
    assert (wifi.locating, vpn.locating, vpn.location_id) == (True, False, None)


def test_bad_signals_in_a_file_are_reported_at_once_with_their_paths():
    text = """\
        accounts:
          - account_id: a
            ip_groups:
              - ip_group_id: g
                name: G
                addresses: []
                bssids: ["f0:6e:0b:c2:03:21", zz, 12, "f0:6e:0b:c2:03:*"]
                switches:
                  - {chassis_id: " "}
                  - {chassis_id: sw, port: x}
                  - {chassis_id: sw, port_id: ""}
                locating: "no"
          - account_id: b
            ip_groups: [{ip_group_id: g, name: G, addresses: [], bssids: f06e0bc20321}]
        """
    assert errors(text) == [
        "accounts[0].ip_groups[0].bssids[1]: 'zz' is not a MAC address",
        "accounts[0].ip_groups[0].bssids[2]: expected a string, got 12; "
        "YAML reads the unquoted 12 as a number: put it in quotes",
        "accounts[0].ip_groups[0].bssids[3]: 'f0:6e:0b:c2:03:*': "
        "'*' may only replace the last hex digit",
        "accounts[0].ip_groups[0].locating: expected a boolean, got 'no'",
        "accounts[0].ip_groups[0].switches[0].chassis_id: is blank",
        "accounts[0].ip_groups[0].switches[1].port: unknown key; did you mean 'port_id'?",
        "accounts[0].ip_groups[0].switches[2].port_id: must not be empty",
        "accounts[1].ip_groups[0].bssids: expected a list, got 'f06e0bc20321'",
    ]


def test_too_many_bssids_in_a_file_are_refused_with_the_limit():
    items = ", ".join(["f06e0bc20321"] * (MAX_BSSIDS_PER_GROUP + 1))
    group = f"{{ip_group_id: g, name: G, addresses: [], bssids: [{items}]}}"
    text = f"accounts: [{{account_id: a, ip_groups: [{group}]}}]"
    assert errors(text) == [
        f"accounts[0].ip_groups[0].bssids: has {MAX_BSSIDS_PER_GROUP + 1} items; "
        f"the limit is {MAX_BSSIDS_PER_GROUP}"
    ]


# ---- export and the import plan -----------------------------------------------------------


def _rows(**group: Any) -> Rows:
    row = {
        "account_id": "acme",
        "ip_group_id": "hq-wifi",
        "name": "HQ Wi-Fi",
        "location_id": None,
        "addresses": [],
        "bssids": ["f06e0bc2032*", "f06e0bc20410"],
        "switches": [{"chassis_id": "001b54aabbcc", "port_id": "gi1/0/12"}, {"chassis_id": "sw"}],
        "locating": True,
        **group,
    }
    return Rows(({"account_id": "acme", "e911_recommendations": True},), (), (row,), (), ())


def test_the_export_writes_the_colon_spelling_and_locating_only_when_false():
    doc = export_document(_rows()).document["accounts"][0]["ip_groups"][0]
    assert doc["bssids"] == ["f0:6e:0b:c2:03:2*", "f0:6e:0b:c2:04:10"]
    assert doc["switches"] == [
        {"chassis_id": "00:1b:54:aa:bb:cc", "port_id": "gi1/0/12"},
        {"chassis_id": "sw"},
    ]
    assert "locating" not in doc
    plain = export_document(_rows(bssids=[], switches=[], locating=False)).document
    assert plain["accounts"][0]["ip_groups"][0] == {
        "ip_group_id": "hq-wifi",
        "name": "HQ Wi-Fi",
        "location_id": None,
        "addresses": [],
        "locating": False,
    }


@pytest.mark.parametrize("locating", [True, False])
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_an_exported_group_imports_back_to_the_same_stored_state(fmt, locating):
    rows = _rows(locating=locating)
    text = render(export_document(rows).document, fmt)
    d = validate(parse(text, fmt)).directory
    assert d is not None
    assert make_plan(d, Stored.of(rows), prune=True).steps == ()


@pytest.mark.parametrize(
    "stored",
    [
        {"bssids": ["f06e0bc2032*"]},
        {"bssids": ["f06e0bc20410", "f06e0bc2032*"]},  # the order is kept, so it counts
        {"switches": [{"chassis_id": "001b54aabbcc", "port_id": "gi1/0/13"}, {"chassis_id": "sw"}]},
        {"switches": [{"chassis_id": "001b54aabbcc"}, {"chassis_id": "sw"}]},
        {"locating": False},
    ],
)
def test_a_change_of_only_the_signals_is_an_update(stored):
    exported = export_document(_rows()).document
    d = validate(exported).directory
    assert d is not None
    assert make_plan(d, Stored.of(_rows()), prune=False).steps == ()
    plan = make_plan(d, Stored.of(_rows(**stored)), prune=False)
    assert [s.line for s in plan.steps] == ["~ ip_group acme/hq-wifi"]
