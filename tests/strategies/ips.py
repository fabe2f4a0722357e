"""IP addresses and IP group entries: valid in many spellings, or invalid by construction.

Valid ones come with the address or networks they must decode to (IPv4-mapped IPv6
decodes to IPv4), so that an expectation never comes from the decoder itself.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from hypothesis import strategies as st

from e911d.daemon.core.ip import IPAddress, IPNetwork

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
EDGE_IPS: Final[tuple[tuple[str, IPAddress], ...]] = (
    ("0.0.0.0", ipaddress.IPv4Address("0.0.0.0")),
    ("255.255.255.255", ipaddress.IPv4Address("255.255.255.255")),
    ("::", ipaddress.IPv6Address("::")),
    ("::1", ipaddress.IPv6Address("::1")),
    ("::ffff:203.0.113.9", ipaddress.IPv4Address("203.0.113.9")),
    ("::FFFF:cb00:7109", ipaddress.IPv4Address("203.0.113.9")),
    ("::ffff:0.0.0.0", ipaddress.IPv4Address("0.0.0.0")),
    ("0:0:0:0:0:ffff:255.255.255.255", ipaddress.IPv4Address("255.255.255.255")),
    ("::1.2.3.4", ipaddress.IPv6Address("::102:304")),  # IPv4-compatible: stays IPv6
    ("64:ff9b::192.0.2.33", ipaddress.IPv6Address("64:ff9b::c000:221")),
    ("2001:0db8:0000:0000:0000:0000:0000:0001", ipaddress.IPv6Address("2001:db8::1")),
    ("2001:DB8::A", ipaddress.IPv6Address("2001:db8::a")),
    ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ipaddress.IPv6Address(2**128 - 1)),
    ("fe80::1", ipaddress.IPv6Address("fe80::1")),
)

ipv4s = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
ipv6s = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address).filter(lambda a: a not in _MAPPED)


def _v4_texts(a: ipaddress.IPv4Address) -> list[str]:
    """Valid spellings of an IPv4 address (plain and IPv4-mapped IPv6)."""
    mapped = ipaddress.IPv6Address(int(a) | (0xFFFF << 32))
    return [
        str(a),
        f"::ffff:{a}",
        f"::FFFF:{a}",
        f"0:0:0:0:0:ffff:{a}",
        str(mapped),
        mapped.exploded,
        mapped.exploded.upper(),
    ]


def _v6_texts(a: ipaddress.IPv6Address) -> list[str]:
    """Valid spellings of a (not IPv4-mapped) IPv6 address."""
    groups = [(int(a) >> (16 * (7 - i))) & 0xFFFF for i in range(8)]
    low = ipaddress.IPv4Address(int(a) & 0xFFFFFFFF)
    return [
        str(a),
        a.exploded,
        a.exploded.upper(),
        str(a).upper(),
        ":".join(f"{g:x}" for g in groups),
        ":".join(f"{g:x}" for g in groups[:6]) + f":{low}",
    ]


@st.composite
def valid_ips(draw: st.DrawFn) -> tuple[str, IPAddress]:
    """(text, the address it must decode to): IPv4-mapped IPv6 decodes to IPv4."""
    family = draw(st.sampled_from(["edge", "v4", "v6"]))
    if family == "edge":
        return draw(st.sampled_from(EDGE_IPS))
    if family == "v4":
        a4 = draw(ipv4s)
        return draw(st.sampled_from(_v4_texts(a4))), a4
    a6 = draw(ipv6s)
    return draw(st.sampled_from(_v6_texts(a6))), a6


_WHITESPACE: Final = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"]
_FOREIGN_ZEROS: Final = [0xFF10, 0x0660, 0x06F0, 0x0966, 0x0E50, 0x1D7CE]  # code of "0"


@st.composite
def invalid_ips(draw: st.DrawFn) -> str:
    """Texts that are not a single IP address, each invalid by construction."""
    kind = draw(
        st.sampled_from(
            [
                "fixed",
                "octet_range",
                "octet_count",
                "leading_zero",
                "zone",
                "padded",
                "v6_groups",
                "v6_hex",
                "foreign_digit",
                "too_long",
                "cidr_or_range",
            ]
        )
    )
    octets = draw(st.lists(st.integers(0, 255), min_size=4, max_size=4))
    if kind == "fixed":
        return draw(
            st.sampled_from(
                [
                    "",
                    "10.0.0.300",
                    "1.2.3",
                    "1.2.3.4.5",
                    "010.0.0.1",
                    "fe80::1%eth0",
                    "fe80::1%",
                    "::ffff:010.0.0.1",
                    "::ffff:1.2.3.256",
                    "0x7f.0.0.1",
                    "127.1",
                    "2130706433",
                    "localhost",
                    "1.2.3.4.",
                    ".1.2.3.4",
                    "1..2.3",
                    "1.2.3.4\x00",
                    "2001:db8:::1",
                    "1::2::3",
                    "12345::",
                    ":",
                    ":::",
                    "::ffff::1.2.3.4",
                    "1.2.3.-4",
                    "[::1]",
                    "1.2.3.4:80",
                ]
            )
        )
    if kind == "octet_range":
        i = draw(st.integers(0, 3))
        octets[i] = draw(st.integers(256, 99_999))
        return ".".join(map(str, octets))
    if kind == "octet_count":
        n = draw(st.sampled_from([1, 2, 3, 5, 6, 8]))
        return ".".join(str(draw(st.integers(0, 255))) for _ in range(n))
    if kind == "leading_zero":
        i = draw(st.integers(0, 3))
        parts = [str(o) for o in octets]
        parts[i] = "0" * draw(st.integers(1, 2)) + parts[i]
        return ".".join(parts)
    text, _ = draw(valid_ips())
    if kind == "zone":
        zone = draw(st.sampled_from(["eth0", "1", "en0", "lo", "%25", "\u00e9th0", ""]))
        return f"{text}%{zone}"
    if kind == "padded":
        pad = draw(st.text(st.sampled_from(_WHITESPACE), min_size=1, max_size=3))
        return draw(st.sampled_from([pad + text, text + pad, pad + text + pad]))
    if kind == "v6_groups":
        groups = draw(st.lists(st.integers(0, 0xFFFF), min_size=9, max_size=10))
        return ":".join(f"{g:x}" for g in groups)
    if kind == "v6_hex":
        a6 = draw(ipv6s)
        return a6.exploded[:-1] + draw(st.sampled_from(["g", "G", "z", "-", "+"]))
    if kind == "foreign_digit":  # a non-ASCII digit (fullwidth, Arabic-Indic, Thai...)
        plain = ".".join(map(str, octets))
        at = draw(st.sampled_from([i for i, c in enumerate(plain) if c.isdigit()]))
        zero = draw(st.sampled_from(_FOREIGN_ZEROS))
        return plain[:at] + chr(zero + int(plain[at])) + plain[at + 1 :]
    if kind == "too_long":
        return "0" * draw(st.integers(65, 300)) + "1.2.3.4"
    # A CIDR or a range is an address item of an IP group, not a session's IP.
    return draw(st.sampled_from([f"{text}/32", f"{text}/0", f"{text}-{text}", f"{text}/"]))


@st.composite
def valid_address_items(draw: st.DrawFn) -> tuple[str, list[IPNetwork]]:
    """An IP group entry (address, CIDR or range) and the exact networks it covers."""
    kind = draw(st.sampled_from(["address", "cidr4", "cidr6", "mapped_cidr", "range4", "range6"]))
    if kind == "address":
        text, ip = draw(valid_ips())
        return text, [ipaddress.ip_network(ip)]
    if kind == "cidr4":
        prefix = draw(st.integers(0, 32))
        net4 = ipaddress.IPv4Network((int(draw(ipv4s)) >> (32 - prefix) << (32 - prefix), prefix))
        return str(net4), [net4]
    if kind == "cidr6":
        prefix = draw(st.integers(0, 128))
        bits = int(draw(ipv6s)) >> (128 - prefix) << (128 - prefix)
        net6 = ipaddress.IPv6Network((bits, prefix))
        if prefix >= 96 and net6.network_address in _MAPPED:
            return str(net6), [ipaddress.IPv4Network((bits & 0xFFFFFFFF, prefix - 96))]
        spelled = draw(st.sampled_from(_v6_texts(net6.network_address)))
        return f"{spelled}/{prefix}", [net6]
    if kind == "mapped_cidr":
        prefix = draw(st.integers(0, 32))
        net4 = ipaddress.IPv4Network((int(draw(ipv4s)) >> (32 - prefix) << (32 - prefix), prefix))
        return f"::ffff:{net4.network_address}/{96 + prefix}", [net4]
    if kind == "range4":
        lo, hi = sorted([draw(ipv4s), draw(ipv4s)])
        first = draw(st.sampled_from(_v4_texts(lo)))
        last = draw(st.sampled_from(_v4_texts(hi)))
        return f"{first}-{last}", list(ipaddress.summarize_address_range(lo, hi))
    lo6, hi6 = sorted([draw(ipv6s), draw(ipv6s)])
    first = draw(st.sampled_from(_v6_texts(lo6)))
    last = draw(st.sampled_from(_v6_texts(hi6)))
    return f"{first}-{last}", list(ipaddress.summarize_address_range(lo6, hi6))


@st.composite
def invalid_address_items(draw: st.DrawFn) -> str:
    """IP group entries that are invalid by construction."""
    kind = draw(
        st.sampled_from(
            ["ip", "host_bits", "prefix", "reversed", "mixed", "broken_range", "zone", "padded"]
        )
    )
    if kind == "ip":
        bad = draw(invalid_ips())
        if "/" in bad or "-" in bad:  # a valid CIDR or range is a valid item
            return bad + "/99"
        return bad
    if kind == "host_bits":
        if draw(st.booleans()):
            prefix = draw(st.integers(0, 31))
            host = draw(st.integers(1, 2 ** (32 - prefix) - 1))
            base = int(draw(ipv4s)) >> (32 - prefix) << (32 - prefix)
            return f"{ipaddress.IPv4Address(base | host)}/{prefix}"
        prefix = draw(st.integers(0, 127))
        host = draw(st.integers(1, 2 ** (128 - prefix) - 1))
        base6 = int(draw(ipv6s)) >> (128 - prefix) << (128 - prefix)
        return f"{ipaddress.IPv6Address(base6 | host)}/{prefix}"
    if kind == "prefix":
        if draw(st.booleans()):
            net = f"{draw(ipv4s)}/{draw(st.integers(33, 999))}"
        else:
            net = f"{draw(ipv6s)}/{draw(st.integers(129, 9999))}"
        return draw(st.sampled_from([net, "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/ 8", "::/-1"]))
    if kind == "reversed":
        if draw(st.booleans()):
            lo, hi = sorted(draw(st.lists(ipv4s, min_size=2, max_size=2, unique=True)))
            return f"{hi}-{lo}"
        lo6, hi6 = sorted(draw(st.lists(ipv6s, min_size=2, max_size=2, unique=True)))
        return f"{hi6}-{lo6}"
    if kind == "mixed":
        a4, a6 = str(draw(ipv4s)), str(draw(ipv6s))
        return draw(st.sampled_from([f"{a4}-{a6}", f"{a6}-{a4}"]))
    if kind == "broken_range":
        a = str(draw(ipv4s))
        return draw(st.sampled_from([f"{a}-", f"-{a}", f"{a}-{a}-{a}", f"{a}/24-{a}", "-"]))
    if kind == "zone":
        return draw(
            st.sampled_from(["fe80::%eth0/64", "fe80::1%eth0-fe80::2", "fe80::1-fe80::2%1"])
        )
    text, _ = draw(valid_address_items())
    pad = draw(st.sampled_from(_WHITESPACE))
    if "-" in text:  # a range's ends are trimmed; pad a single address or a CIDR instead
        text = str(draw(ipv4s)) + "/32"
    return draw(st.sampled_from([pad + text, text + pad]))
