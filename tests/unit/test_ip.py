"""Addresses, CIDRs and ranges as every input of e911d spells them
(docs/spec.md#session-events-topic, #directory-events-topic)."""

from __future__ import annotations

import ipaddress

import pytest

from e911d.daemon.core.ip import parse_address_item, parse_ip


def test_range_is_exactly_its_covering_cidrs() -> None:
    nets = parse_address_item("192.0.2.10-192.0.2.20")
    assert [str(n) for n in nets] == [
        "192.0.2.10/31",
        "192.0.2.12/30",
        "192.0.2.16/30",
        "192.0.2.20/32",
    ]
    addresses = [a for n in nets for a in n]
    lo, hi = ipaddress.IPv4Address("192.0.2.10"), ipaddress.IPv4Address("192.0.2.20")
    assert addresses == [lo + i for i in range(int(hi) - int(lo) + 1)]


def test_single_address_range_and_ipv6_range() -> None:
    assert parse_address_item("10.0.0.1-10.0.0.1") == [ipaddress.ip_network("10.0.0.1/32")]
    nets = parse_address_item("2001:db8::-2001:db8::ff")
    assert nets == [ipaddress.ip_network("2001:db8::/120")]


def test_address_items() -> None:
    assert parse_address_item("10.0.0.1") == [ipaddress.ip_network("10.0.0.1/32")]
    assert parse_address_item("2001:db8::1") == [ipaddress.ip_network("2001:db8::1/128")]
    assert parse_address_item("0.0.0.0/0") == [ipaddress.ip_network("0.0.0.0/0")]
    # An IPv4-mapped host or network is stored as IPv4, like a mapped session IP.
    assert parse_address_item("::ffff:10.0.0.1") == [ipaddress.ip_network("10.0.0.1/32")]
    assert parse_address_item("::ffff:10.0.0.0/120") == [ipaddress.ip_network("10.0.0.0/24")]


def test_parse_ip() -> None:
    assert parse_ip("192.0.2.1") == ipaddress.IPv4Address("192.0.2.1")
    assert parse_ip("::ffff:192.0.2.1") == ipaddress.IPv4Address("192.0.2.1")
    assert parse_ip("2001:DB8::1") == ipaddress.IPv6Address("2001:db8::1")


@pytest.mark.parametrize("text", ["010.0.0.1", "fe80::1%eth0", "1.2.3", "", " 1.2.3.4", "1.2.3.4 "])
def test_parse_ip_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP"):
        parse_ip(text)


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.1/24",
        "10.0.0.9-10.0.0.1",
        "10.0.0.1-2001:db8::1",
        "10.0.0.0/33",
        "2001:db8::/129",
        "fe80::%eth0/64",
        "10.0.0.0/8 ",
        "10.0.0.1-",
        "garbage",
        # One spelling of a prefix: no netmasks, host masks, leading zeros or signs.
        "10.0.0.0/255.0.0.0",
        "10.0.0.0/0.255.255.255",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "10.0.0.0/",
        "10.0.0.0/٨",
    ],
)
def test_parse_address_item_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address_item(text)
