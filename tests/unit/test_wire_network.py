"""The optional ``network`` of login and ip_changed (docs/spec.md#session-events-topic,
#network-signals): decoded, normalised,
and refused as ``invalid_data`` when malformed, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e911d.consumers.wire import decode_session_event
from e911d.daemon.core.events import Invalid, InvalidReason, SessionEvent
from e911d.daemon.core.network import NetworkSignals

MAX = 65_536
LOGIN = {"account_id": "acme", "user_id": "alice", "session_id": "s-1", "ip": "198.51.100.23"}
TYPES = ("e911.session.login", "e911.session.ip_changed")


def decode(network: Any, type_: str = "e911.session.login", absent: bool = False) -> object:
    data = dict(LOGIN) if absent else {**LOGIN, "network": network}
    body = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "urn:test",
        "type": type_,
        "time": "2026-11-26T09:00:00Z",
        "data": data,
    }
    return decode_session_event(json.dumps(body).encode(), MAX)


def network_of(result: object) -> NetworkSignals | None:
    assert isinstance(result, SessionEvent), result
    return result.network


def invalid_data(result: object) -> str:
    assert isinstance(result, Invalid), result
    assert result.reason is InvalidReason.INVALID_DATA
    assert result.detail
    return result.detail


@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ({"bssid": "F0-6E-0B-C2-03-21"}, NetworkSignals("f06e0bc20321")),
        ({"bssid": "f06e.0bc2.0321"}, NetworkSignals("f06e0bc20321")),
        ({"bssid": "f0:6e:b:c2:3:21"}, NetworkSignals("f06e0bc20321")),
        (
            {"switch": {"chassis_id": "00:1A:2B:3C:4D:5E", "port_id": " Gi1/0/12 "}},
            NetworkSignals(None, "001a2b3c4d5e", "gi1/0/12"),
        ),
        ({"switch": {"chassis_id": " Core-SW1 "}}, NetworkSignals(None, "core-sw1", None)),
        (
            {"bssid": "f06e0bc20321", "switch": {"chassis_id": "sw", "port_id": "7"}, "x": 1},
            NetworkSignals("f06e0bc20321", "sw", "7"),
        ),
        ({"switch": {"chassis_id": "sw", "port_id": None, "vlan": 12}}, NetworkSignals(None, "sw")),
    ],
)
def test_network_is_decoded_normalised(
    type_: str, network: dict[str, Any], expected: NetworkSignals
) -> None:
    assert network_of(decode(network, type_)) == expected


@pytest.mark.parametrize("network", [None, {}, {"bssid": None}, {"switch": None}, {"ssid": "x"}])
def test_no_signal_is_no_network(network: Any) -> None:
    assert network_of(decode(network)) is None


def test_absent_network_is_none() -> None:
    assert network_of(decode(None, absent=True)) is None


def test_logout_ignores_a_network_field() -> None:
    """Not a field of logout: even a hostile value is an ignored unknown field."""
    body = {
        "specversion": "1.0",
        "id": "e",
        "source": "s",
        "type": "e911.session.logout",
        "time": "2026-11-26T09:00:00Z",
        "data": {**LOGIN, "network": {"bssid": "not a mac"}},
    }
    ev = decode_session_event(json.dumps(body).encode(), MAX)
    assert isinstance(ev, SessionEvent)
    assert ev.network is None


@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize(
    "bssid",
    [
        "f0:6e:0b:c2:03:2*",  # a pattern belongs to an IP group, never to a session
        "f0:6e:0b:c2:03",
        "f0:6e:0b:c2:03:21:22",
        "g06e0bc20321",
        "f06e0bc2032",
        "f0-6e:0b-c2:03-21",
        "f06e.0bc2.032",
        " ",
        "",
        "é" * 12,
        "f" * 64,
        "f" * 65,  # oversized
    ],
)
def test_malformed_bssid_is_invalid_data(type_: str, bssid: str) -> None:
    invalid_data(decode({"bssid": bssid}, type_))


@pytest.mark.parametrize(
    "network",
    [
        [],
        "f06e0bc20321",
        17,
        True,
        {"bssid": 0xF06E0BC20321},
        {"bssid": ["f06e0bc20321"]},
        {"bssid": {"mac": "f06e0bc20321"}},
        {"switch": "sw1"},
        {"switch": []},
        {"switch": {}},  # the chassis is what a port belongs to: required
        {"switch": {"port_id": "gi1/0/1"}},
        {"switch": {"chassis_id": None}},
        {"switch": {"chassis_id": 5}},
        {"switch": {"chassis_id": ""}},
        {"switch": {"chassis_id": "   "}},
        {"switch": {"chassis_id": "sw\x00"}},
        {"switch": {"chassis_id": "c" * 256}},
        {"switch": {"chassis_id": "sw", "port_id": ""}},
        {"switch": {"chassis_id": "sw", "port_id": " \t"}},
        {"switch": {"chassis_id": "sw", "port_id": "gi\n1"}},
        {"switch": {"chassis_id": "sw", "port_id": "p" * 256}},
        {"switch": {"chassis_id": "sw", "port_id": 12}},
    ],
)
def test_wrong_shapes_types_and_sizes_are_invalid_data(network: Any) -> None:
    invalid_data(decode(network))


def test_longest_accepted_switch_ids() -> None:
    net = network_of(decode({"switch": {"chassis_id": "C" * 255, "port_id": "P" * 255}}))
    assert net == NetworkSignals(None, "c" * 255, "p" * 255)


def test_deeply_nested_network_is_invalid_not_a_crash() -> None:
    raw = '{"network":' + '{"switch":' * 5000 + "{}" + "}" * 5001
    body = (
        '{"specversion":"1.0","id":"e","source":"s","type":"e911.session.login",'
        '"time":"2026-11-26T09:00:00Z","data":{"account_id":"a","user_id":"u",'
        '"session_id":"s","ip":"198.51.100.1",' + raw[1:-1] + "}}"
    )
    result = decode_session_event(body.encode(), 1_000_000)
    assert isinstance(result, Invalid)


_HOSTILE_TEXT = st.one_of(
    st.text(max_size=80),
    st.text("0123456789abcdefABCDEF:-.* \t", max_size=20),
)
_HOSTILE_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        _HOSTILE_TEXT,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_HOSTILE_NETWORKS = st.one_of(
    _HOSTILE_VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "bssid": st.one_of(_HOSTILE_TEXT, _HOSTILE_VALUES),
            "switch": st.one_of(
                _HOSTILE_VALUES,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "chassis_id": st.one_of(_HOSTILE_TEXT, _HOSTILE_VALUES),
                        "port_id": st.one_of(_HOSTILE_TEXT, _HOSTILE_VALUES),
                    },
                ),
            ),
        },
    ),
)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_HOSTILE_NETWORKS)
def test_hostile_network_decodes_to_normalised_signals_or_invalid_data(network: Any) -> None:
    result = decode(network)
    if isinstance(result, Invalid):
        assert result.reason is InvalidReason.INVALID_DATA
        return
    net = network_of(result)
    if net is None:
        return
    assert not net.empty or net.port_id is None
    if net.bssid is not None:
        assert len(net.bssid) == 12
        assert set(net.bssid) <= set("0123456789abcdef")
    if net.chassis_id is not None:
        assert net.chassis_id and net.chassis_id == net.chassis_id.strip()
    if net.port_id is not None:
        assert net.chassis_id is not None  # a port only ever comes with its switch
        assert net.port_id and net.port_id == net.port_id.strip().casefold()
