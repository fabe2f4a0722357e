"""The network key of a session: most specific signal first, prefixes per family."""

from __future__ import annotations

import ipaddress

import pytest

from e911d.daemon.core.network import NetworkSignals
from e911d.daemon.core.network_key import (
    NetworkKey,
    NetworkKeyKind,
    ip_prefix_key,
    network_key,
    network_keys,
    switch_port_key,
)

V4 = ipaddress.ip_address("203.0.113.77")
V6 = ipaddress.ip_address("2001:db8:abcd:12ff::1")


def test_bssid_wins_over_port_and_prefix() -> None:
    signals = NetworkSignals(bssid="f06e0bc20321", chassis_id="sw-3", port_id="gi1/0/12")
    keys = network_keys(V4, signals)
    assert [k.kind for k in keys] == [
        NetworkKeyKind.BSSID,
        NetworkKeyKind.SWITCH_PORT,
        NetworkKeyKind.IP_PREFIX,
    ]
    assert network_key(V4, signals) == NetworkKey(NetworkKeyKind.BSSID, "f06e0bc20321")
    assert keys[0].display == "f0:6e:0b:c2:03:21"


def test_port_needs_both_chassis_and_port() -> None:
    only_chassis = NetworkSignals(chassis_id="sw-3")
    assert network_key(V4, only_chassis).kind is NetworkKeyKind.IP_PREFIX
    port = network_key(V4, NetworkSignals(chassis_id="sw-3", port_id="gi1/0/12"))
    assert port == switch_port_key("sw-3", "gi1/0/12")
    assert port.chassis_port == ("sw-3", "gi1/0/12")
    assert port.display == "sw-3 port gi1/0/12"


@pytest.mark.parametrize(
    ("ip", "v4", "v6", "expected"),
    [
        (V4, 24, 56, "203.0.113.0/24"),
        (V4, 16, 56, "203.0.0.0/16"),
        (V6, 24, 56, "2001:db8:abcd:1200::/56"),
        (V6, 24, 64, "2001:db8:abcd:12ff::/64"),
    ],
)
def test_prefix_per_family(ip: ipaddress.IPv4Address, v4: int, v6: int, expected: str) -> None:
    assert ip_prefix_key(ip, v4, v6).value == expected
    assert network_key(ip, None, v4, v6) == NetworkKey(NetworkKeyKind.IP_PREFIX, expected)


def test_chassis_port_refused_for_other_kinds() -> None:
    with pytest.raises(ValueError, match="no switch port"):
        _ = ip_prefix_key(V4).chassis_port
