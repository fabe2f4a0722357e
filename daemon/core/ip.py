"""IP addresses and networks as e911d reads them, wherever they come from.

Session events, IP group events, directory files, ``e911d explain`` and the pure
evaluation must agree on what an address is and which spellings are accepted, or an
address that matches in one place would not match in another. Standard library only,
so the pure evaluation can use it.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadIp(ValueError):
    """A refused address, CIDR or range; the message says what was wrong with it."""


def normalize_ip(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address is the IPv4 host behind it."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_ip(text: str) -> IPAddress:
    """A single IPv4/IPv6 literal; IPv4-mapped IPv6 becomes IPv4; zone ids are refused.

    Leading zeros in IPv4 (``010.0.0.1``) are refused by :mod:`ipaddress` because they
    are read as octal by some stacks and decimal by others.
    """
    if not text or len(text) > 64 or "%" in text or text != text.strip():
        raise BadIp(f"{text[:80]!r} is not an IP address")
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise BadIp(f"{text!r} is not an IP address") from None
    return normalize_ip(ip)


def parse_address_item(text: str) -> list[IPNetwork]:
    """An IP group entry: address, CIDR or inclusive range, as exact CIDRs."""
    if len(text) > 200:
        raise BadIp(f"{text[:80]!r}... is too long for an address, CIDR or range")
    if "-" in text:
        first_text, _, last_text = text.partition("-")
        first = parse_ip(first_text.strip())
        last = parse_ip(last_text.strip())
        if first.version != last.version:
            raise BadIp(f"{text!r} mixes IPv4 and IPv6")
        if int(first) > int(last):
            raise BadIp(f"{text!r} is an empty range (start after end)")
        return list(ipaddress.summarize_address_range(first, last))
    if "/" in text:
        if "%" in text or text != text.strip():
            raise BadIp(f"{text!r} is not a CIDR")
        prefix = text.partition("/")[2]
        # ipaddress also takes netmasks (/255.0.0.0), host masks and /08: one spelling
        # only, so that what an operator reads is what is matched.
        if not (prefix.isascii() and prefix.isdigit()) or (len(prefix) > 1 and prefix[0] == "0"):
            raise BadIp(f"{text!r} is not a CIDR: the prefix must be a length in bits, like /24")
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise BadIp(f"{text!r} is not a CIDR: {exc}") from None
        if (
            isinstance(net, ipaddress.IPv6Network)
            and net.network_address.ipv4_mapped
            and (net.prefixlen >= 96)
        ):
            mapped = net.network_address.ipv4_mapped
            return [ipaddress.IPv4Network((int(mapped), net.prefixlen - 96))]
        return [net]
    ip = parse_ip(text)
    return [ipaddress.ip_network(ip)]
