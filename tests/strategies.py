"""Hypothesis strategies of hostile inbound messages, each tagged with what must happen.

Every example is a :class:`Tagged`: the Kafka value (bytes, or None), its key, the topic
it goes to, and an expectation derived from how it was built, never from the decoder:

* :class:`Good`: the exact event the decoder must return (and so the state the daemon
  must reach). Good events carry hostile-but-legal content: unknown extra attributes
  and data fields with arbitrary JSON (SPEC §3: ignored), unicode and maximum-length
  ids, edge-but-valid IPs (IPv4-mapped IPv6, ``::``, ``0.0.0.0``, full and compressed
  IPv6), offsets and fractions in times, odd JSON layouts.
* :class:`Bad`: the set of dead-letter reasons (SPEC §3.4) acceptable for it. One fault
  in the structure means exactly one reason; two faults in different places accept
  either fault's reason (their precedence is not part of the contract); a fault in the
  bytes whose reason depends on where a parser notices it (deep nesting inside a known
  attribute: a wrong type or too deep) accepts each. Anything beyond the size limit is
  ``oversized``, whatever else is wrong with it.

Ids of good events embed a process-wide serial number, so that no two good events of a
run touch the same session or directory entity (their effects are checked one by one).
Session event times are drawn relative to the current time (the daemon refuses times
beyond its clock skew allowance), so values must be used soon after they are drawn.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import ipaddress
import itertools
import json
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st

from e911d.consumers.events import (
    AccountDeleted,
    AccountUpserted,
    Address,
    Coordinates,
    DirectoryChange,
    DirectoryEvent,
    DirectoryEventKind,
    InvalidReason,
    IpGroupDeleted,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    SessionEvent,
    SessionEventKind,
    UserDeleted,
    UserLocationChanged,
    UserUpserted,
)
from e911d.consumers.ip import IPAddress, IPNetwork

SESSION: Final = "session"
DIRECTORY: Final = "directory"
MAX_EVENT_BYTES: Final = 65_536  # the daemon's default kafka.max_event_bytes
MAX_CLOCK_SKEW: Final = dt.timedelta(seconds=300)  # the default checks.max_clock_skew_seconds

R = InvalidReason


# ---- tags ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Good:
    """Must be decoded to exactly this event, and applied."""

    event: SessionEvent | DirectoryEvent


@dataclass(frozen=True, slots=True)
class Bad:
    """Must be dead-lettered with one of these reasons."""

    reasons: frozenset[InvalidReason]


@dataclass(frozen=True, slots=True)
class Tagged:
    topic: str  # SESSION or DIRECTORY
    key: str
    value: bytes | None
    expect: Good | Bad
    category: str  # how it was built, for failure messages and coverage

    @property
    def good(self) -> bool:
        return isinstance(self.expect, Good)


def _bad(*reasons: InvalidReason) -> frozenset[InvalidReason]:
    return frozenset(reasons)


# ---- text ---------------------------------------------------------------------------

_C0: Final = "".join(chr(c) for c in range(0x20)) + "\x7f"  # refused in ids
_NAME_REFUSED: Final = "".join(c for c in _C0 if c not in "\t\n")  # names allow tab, newline
_ID_CHARS = st.characters(codec="utf-8", exclude_characters=_C0)
_NAME_CHARS = st.characters(codec="utf-8", exclude_characters=_NAME_REFUSED)
_ANY_CHARS = st.characters(codec="utf-8")
# Legal in ids and names, and unpleasant in logs, SQL and terminals.
HOSTILE_TEXT: Final = (
    "\u202eevil-rtl",
    "zero\u200bwidth",
    "\ufeffbom",
    "\uffff\ufffe",
    "\U0010ffff",
    "c1\x85\x9bcontrol",
    "nbsp\u00a0",
    'quote"back\\slash',
    "'; DROP TABLE sessions; --",
    "%s%n{0}${x}",
    "\U0001f600\U0001f469\u200d\U0001f467",
    "\u03a9\u2248\u00e7\u221a",
    "\u0645\u0631\u062d\u0628\u0627",
    "e\u0301\u0301\u0301",
)
_SERIAL = itertools.count()

free_ids = st.one_of(st.text(_ID_CHARS, min_size=1, max_size=8), st.sampled_from(HOSTILE_TEXT))
names = st.one_of(st.text(_NAME_CHARS, max_size=10), st.sampled_from(HOSTILE_TEXT))
nonempty_names = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=10), st.sampled_from(HOSTILE_TEXT)
)


@st.composite
def unique_ids(draw: st.DrawFn, tag: str) -> str:
    """A legal id no other example of this process has: hostile text + a serial."""
    serial = f"#{tag}{next(_SERIAL)}"
    head = draw(free_ids)
    if draw(st.integers(0, 5)) == 0:  # exactly the maximum length (256 characters)
        fill = draw(_ID_CHARS)
        head = (head + fill * 256)[: 256 - len(serial)]
    return head[: 256 - len(serial)] + serial


@st.composite
def _long_text(draw: st.DrawFn, min_size: int, max_size: int) -> str:
    """A long string, cheaply: a drawn chunk repeated to a drawn length (in characters).

    Non-ASCII ones stay short enough that, escaped as ``\\uXXXX``, they rarely pass
    the size limit (oversized messages are drawn on purpose by ``big_messages``).
    """
    chunk = draw(st.sampled_from(["x", "x", "ab", "\u00e9", "\U0001f600"]))
    limit = max_size if chunk.isascii() else max(min_size, min(max_size, 2_000))
    n = draw(st.integers(min_size, limit))
    return (chunk * n)[:n]


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(_ANY_CHARS, max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(_ANY_CHARS, max_size=6), children, max_size=4),
    ),
    max_leaves=8,
)
non_string_json = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


moderately_nested = st.integers(1, 40).map(_nested)  # legal in ignored places


# ---- IPs ----------------------------------------------------------------------------

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


# ---- times --------------------------------------------------------------------------

_OFFSETS: Final = [None, 0, 330, -480, 840, -720, 1, -59]  # minutes; None renders "Z"


@st.composite
def rendered_times(draw: st.DrawFn, when: dt.datetime) -> tuple[str, dt.datetime]:
    """An RFC 3339 spelling of ``when`` (UTC) and the instant it denotes."""
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    if spec == "seconds":
        when = when.replace(microsecond=0)
    elif spec == "milliseconds":
        when = when.replace(microsecond=when.microsecond // 1000 * 1000)
    offset = draw(st.sampled_from(_OFFSETS))
    if offset is None:
        return when.isoformat(timespec=spec).replace("+00:00", "Z"), when
    local = when.astimezone(dt.timezone(dt.timedelta(minutes=offset)))
    return local.isoformat(timespec=spec), when


def _naive(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, s: int = 0
) -> dt.datetime:
    """Hypothesis takes naive bounds (the time zone is drawn separately)."""
    return dt.datetime(year, month, day, hour, minute, s, tzinfo=dt.UTC).replace(tzinfo=None)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@st.composite
def good_session_times(draw: st.DrawFn) -> tuple[str, dt.datetime]:
    """Within the last hour, or a little ahead (well inside the 300 s clock skew)."""
    seconds = draw(st.integers(-3600, 60))
    micros = draw(st.integers(0, 999_999))
    return draw(rendered_times(utcnow() + dt.timedelta(seconds=seconds, microseconds=micros)))


@st.composite
def any_valid_times(draw: st.DrawFn) -> tuple[str, dt.datetime]:
    when = draw(st.datetimes(_naive(2000, 1, 2), _naive(2199, 12, 30), timezones=st.just(dt.UTC)))
    return draw(rendered_times(when))


@st.composite
def invalid_times(draw: st.DrawFn, session: bool) -> str:
    """Times that are invalid_time by construction (``session``: also far in the future)."""
    kinds = ["naive", "out_of_range", "fixed", "garbage", "too_long"]
    kind = draw(st.sampled_from([*kinds, "future"] if session else kinds))
    if kind == "naive":
        text, _ = draw(any_valid_times())
        return text.removesuffix("Z")[:19] + draw(st.sampled_from(["", ".5", ".123456"]))
    if kind == "out_of_range":
        when = draw(
            st.one_of(
                st.datetimes(_naive(1, 1, 1), _naive(1999, 12, 31, 23, 59, 59)),
                st.datetimes(_naive(2200, 1, 1), _naive(9999, 12, 31)),
            )
        )
        return when.isoformat() + draw(st.sampled_from(["Z", "+00:00"]))
    if kind == "fixed":
        return draw(
            st.sampled_from(
                [
                    "",
                    "yesterday",
                    "now",
                    "1970-01-01T00:00:00Z",
                    "0001-01-01T00:00:00+01:00",
                    "9999-12-31T23:59:59-01:00",
                    "2026-13-01T00:00:00Z",
                    "2026-02-30T00:00:00Z",
                    "2026-11-26T25:00:00Z",
                    "2026-11-26T09:61:00Z",
                    "2026-11-26T09:00:00+24:00",
                    "2026-11-26T09:00:00 Z",
                    "Thu, 26 Nov 2026 09:00:00 GMT",
                ]
            )
        )
    if kind == "garbage":
        return draw(
            st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzTZ:-+. \u00e9"), max_size=30)
        )
    if kind == "too_long":
        text, _ = draw(any_valid_times())
        return text + " " * (65 - len(text)) + draw(st.text(max_size=40))
    # Stamped beyond the allowed clock skew (and before 2200).
    seconds = draw(st.integers(int(MAX_CLOCK_SKEW.total_seconds()) * 3, 3 * 10**9))
    text, _ = draw(rendered_times(utcnow() + dt.timedelta(seconds=seconds)))
    return text


# ---- good events --------------------------------------------------------------------

_ENVELOPE_KNOWN: Final = frozenset(
    {"specversion", "id", "source", "type", "data", "time", "datacontenttype"}
)
# Standard CloudEvents attributes: not "unknown", so not used as extra attributes.
_CE_RESERVED: Final = frozenset({"dataschema", "subject", "data_base64"})
ABSENT: Final = object()  # "no such key" in a body


_EXTRA_VALUES = st.one_of(json_values, moderately_nested, _long_text(100, 1000))


@functools.cache
def _extra_fields(known: frozenset[str], max_size: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """Unknown fields (none of ``known``) with arbitrary values: ignored by contract."""
    keys = st.text(_ANY_CHARS, max_size=8).filter(lambda k: k not in known)
    return st.dictionaries(keys, _EXTRA_VALUES, max_size=max_size)


_EVENT_IDS = st.one_of(  # CloudEvents ids: any non-empty string up to 512 characters
    st.text(_ANY_CHARS, min_size=1, max_size=10), st.just("e" * 512), st.uuids().map(str)
)
_SOURCES = st.one_of(
    st.just("urn:e911:test"),
    st.text(_ANY_CHARS, min_size=1, max_size=10),
    st.just("https://example.com/" + "p" * 2028),
)
_CONTENT_TYPES = st.sampled_from([ABSENT, "application/json", "application/json; charset=utf-8"])


@st.composite
def envelope(
    draw: st.DrawFn, type_: str, data: Any, time: str | object | None = ABSENT
) -> dict[str, Any]:
    """A CloudEvents 1.0 structured-mode body with legal but unusual attributes."""
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(_EVENT_IDS),
        "source": draw(_SOURCES),
        "type": type_,
        "data": data,
    }
    if time is not ABSENT:
        body["time"] = time
    content_type = draw(_CONTENT_TYPES)
    if content_type is not ABSENT:
        body["datacontenttype"] = content_type
    body.update(draw(_extra_fields(_ENVELOPE_KNOWN | _CE_RESERVED)))
    order = draw(st.permutations(list(body)))
    return {k: body[k] for k in order}


# Field kinds of each type's data: id, id? (nullable), bool, name, name1 (non-empty),
# ip, via (console|app), address, coords? (nullable object), addresses.
SESSION_FIELDS: Final[dict[str, dict[str, str]]] = {
    SessionEventKind.LOGIN: {
        "account_id": "id",
        "user_id": "id",
        "session_id": "id",
        "ip": "ip",
    },
    SessionEventKind.IP_CHANGED: {
        "account_id": "id",
        "user_id": "id",
        "session_id": "id",
        "ip": "ip",
    },
    SessionEventKind.LOGOUT: {"account_id": "id", "user_id": "id", "session_id": "id"},
    SessionEventKind.ALERT_DISMISSED: {
        "account_id": "id",
        "user_id": "id",
        "session_id": "id",
        "alert_id": "id",
    },
}
DIRECTORY_FIELDS: Final[dict[str, dict[str, str]]] = {
    DirectoryEventKind.ACCOUNT_UPSERTED: {"account_id": "id", "e911_recommendations": "bool"},
    DirectoryEventKind.ACCOUNT_DELETED: {"account_id": "id"},
    DirectoryEventKind.USER_UPSERTED: {
        "account_id": "id",
        "user_id": "id",
        "e911_recommendations": "bool",
        "e911_location_id": "id?",
    },
    DirectoryEventKind.USER_LOCATION_CHANGED: {
        "account_id": "id",
        "user_id": "id",
        "e911_location_id": "id?",
        "changed_via": "via",
    },
    DirectoryEventKind.USER_DELETED: {"account_id": "id", "user_id": "id"},
    DirectoryEventKind.LOCATION_UPSERTED: {
        "account_id": "id",
        "location_id": "id",
        "name": "name1",
        "address": "address",
        "coordinates": "coords?",
    },
    DirectoryEventKind.LOCATION_DELETED: {"account_id": "id", "location_id": "id"},
    DirectoryEventKind.IP_GROUP_UPSERTED: {
        "account_id": "id",
        "ip_group_id": "id",
        "name": "name",
        "location_id": "id?",
        "addresses": "addresses",
    },
    DirectoryEventKind.IP_GROUP_DELETED: {"account_id": "id", "ip_group_id": "id"},
}
OPTIONAL_FIELDS: Final = {
    (DirectoryEventKind.USER_UPSERTED, "e911_location_id"),
    (DirectoryEventKind.LOCATION_UPSERTED, "coordinates"),
    (DirectoryEventKind.IP_GROUP_UPSERTED, "location_id"),
}
_KIND_ORDER: Final = (
    "address",
    "coords?",
    "via",
    "bool",
    "name1",
    "name",
    "id?",
    "ip",
    "addresses",
    "id",
)
ADDRESS_FIELDS: Final = ("street", "city", "country", "region", "postal_code")
ADDRESS_REQUIRED: Final = ("street", "city", "country")


@dataclass(frozen=True, slots=True)
class Built:
    """A good event before encoding: its body, the event it must decode to, its key."""

    topic: str
    body: dict[str, Any]
    event: SessionEvent | DirectoryEvent
    key: str
    label: str


@st.composite
def good_session_built(
    draw: st.DrawFn, kinds: tuple[SessionEventKind, ...] = tuple(SessionEventKind)
) -> Built:
    kind = draw(st.sampled_from(kinds))
    account, user = draw(free_ids), draw(free_ids)
    session_id = draw(unique_ids("s"))
    data: dict[str, Any] = {"account_id": account, "user_id": user, "session_id": session_id}
    ip: IPAddress | None = None
    alert_id: str | None = None
    label = kind.value
    if kind in (SessionEventKind.LOGIN, SessionEventKind.IP_CHANGED):
        data["ip"], ip = draw(valid_ips())
        form = "ipv4_mapped" if ip.version == 4 and ":" in data["ip"] else f"ipv{ip.version}"
        label += f"+{form}"
    elif draw(st.booleans()):
        # Not a field of logout/dismissed: a bad IP there is an ignored unknown field.
        data["ip"] = draw(invalid_ips())
        label += "+ignored_bad_ip"
    if kind is SessionEventKind.ALERT_DISMISSED:
        alert_id = draw(free_ids)
        data["alert_id"] = alert_id
    data.update(draw(_extra_fields(frozenset(SESSION_FIELDS[kind]) | {"ip"})))
    data = {k: data[k] for k in draw(st.permutations(list(data)))}
    time_text, when = draw(good_session_times())
    body = draw(envelope(kind.value, data, time_text))
    event = SessionEvent(kind, body["id"], when, account, user, session_id, ip, alert_id)
    return Built(SESSION, body, event, user, label)


@st.composite
def _address(draw: st.DrawFn) -> tuple[dict[str, Any], Address]:
    values = {f: draw(names) for f in ADDRESS_FIELDS}
    shown = {f: values[f] for f in ADDRESS_FIELDS if f in ADDRESS_REQUIRED or draw(st.booleans())}
    shown.update(draw(_extra_fields(frozenset(ADDRESS_FIELDS), max_size=2)))
    return shown, Address(**{f: shown.get(f, "") for f in ADDRESS_FIELDS})


_LATS = st.one_of(st.floats(-90, 90), st.integers(-90, 90), st.sampled_from([90, -90.0, -0.0]))
_LONS = st.one_of(st.floats(-180, 180), st.integers(-180, 180), st.sampled_from([180, -180.0]))


@st.composite
def _directory_change(
    draw: st.DrawFn, kind: DirectoryEventKind, account: str
) -> tuple[dict[str, Any], DirectoryChange]:
    data: dict[str, Any] = {"account_id": account}
    K = DirectoryEventKind
    if kind is K.ACCOUNT_UPSERTED:
        data["e911_recommendations"] = on = draw(st.booleans())
        return data, AccountUpserted(account, on)
    if kind is K.ACCOUNT_DELETED:
        return data, AccountDeleted(account)
    if kind in (K.USER_UPSERTED, K.USER_LOCATION_CHANGED, K.USER_DELETED):
        data["user_id"] = user = draw(free_ids)
        if kind is K.USER_DELETED:
            return data, UserDeleted(account, user)
        location = draw(st.one_of(st.none(), free_ids))
        if kind is K.USER_UPSERTED:
            data["e911_recommendations"] = on = draw(st.booleans())
            if location is not None or draw(st.booleans()):
                data["e911_location_id"] = location
            return data, UserUpserted(account, user, on, location)
        data["e911_location_id"] = location
        data["changed_via"] = via = draw(st.sampled_from(["console", "app"]))
        return data, UserLocationChanged(account, user, location, via)
    if kind in (K.LOCATION_UPSERTED, K.LOCATION_DELETED):
        data["location_id"] = location_id = draw(free_ids)
        if kind is K.LOCATION_DELETED:
            return data, LocationDeleted(account, location_id)
        data["name"] = name = draw(nonempty_names)
        data["address"], address = draw(_address())
        coords: Coordinates | None = None
        shape = draw(st.sampled_from(["absent", "null", "coords"]))
        if shape == "null":
            data["coordinates"] = None
        elif shape == "coords":
            lat, lon = draw(_LATS), draw(_LONS)
            data["coordinates"] = {"lat": lat, "lon": lon, **draw(_extra_fields(frozenset()))}
            coords = Coordinates(float(lat), float(lon))
        return data, LocationUpserted(account, location_id, name, address, coords)
    data["ip_group_id"] = group = draw(free_ids)
    if kind is K.IP_GROUP_DELETED:
        return data, IpGroupDeleted(account, group)
    data["name"] = name = draw(names)
    items: list[tuple[str, list[IPNetwork]]] = draw(st.lists(valid_address_items(), max_size=6))
    duplicate = draw(st.booleans())
    if items and duplicate:
        items.append(items[0])  # a duplicate entry
    data["addresses"] = [text for text, _ in items]
    networks = tuple(dict.fromkeys(n for _, nets in items for n in nets))
    location = draw(st.one_of(st.none(), free_ids))
    if location is not None or draw(st.booleans()):
        data["location_id"] = location
    return data, IpGroupUpserted(account, group, name, location, networks, tuple(data["addresses"]))


@st.composite
def good_directory_built(
    draw: st.DrawFn, kinds: tuple[DirectoryEventKind, ...] = tuple(DirectoryEventKind)
) -> Built:
    kind = draw(st.sampled_from(kinds))
    account = draw(unique_ids("a"))
    data, change = draw(_directory_change(kind, account))
    data.update(draw(_extra_fields(frozenset(DIRECTORY_FIELDS[kind]))))
    data = {k: data[k] for k in draw(st.permutations(list(data)))}
    shape = draw(st.sampled_from(["absent", "null", "time"]))
    when: dt.datetime | None = None
    if shape == "absent":
        body = draw(envelope(kind.value, data))
    elif shape == "null":
        body = draw(envelope(kind.value, data, None))
    else:
        time_text, when = draw(any_valid_times())
        body = draw(envelope(kind.value, data, time_text))
    return Built(DIRECTORY, body, DirectoryEvent(kind, body["id"], when, change), account, kind)


def good_built(topic: str) -> st.SearchStrategy[Built]:
    return _GOOD_SESSION if topic == SESSION else _GOOD_DIRECTORY


def _with_addresses(topic: str) -> st.SearchStrategy[Built]:
    """Good events with an IP field (session) or address items (directory)."""
    return _GOOD_LOGINS if topic == SESSION else _GOOD_IP_GROUPS


_GOOD_SESSION = good_session_built()
_GOOD_DIRECTORY = good_directory_built()
_GOOD_LOGINS = good_session_built((SessionEventKind.LOGIN, SessionEventKind.IP_CHANGED))
_GOOD_IP_GROUPS = good_directory_built((DirectoryEventKind.IP_GROUP_UPSERTED,))


# ---- encoding -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Style:
    ensure_ascii: bool
    layout: str  # compact, spaced, indented, tabbed
    trailing: str  # whitespace after the object (legal JSON)

    def dumps(self, body: Any) -> bytes:
        kwargs: dict[str, Any] = {"ensure_ascii": self.ensure_ascii}
        if self.layout == "compact":
            kwargs["separators"] = (",", ":")
        elif self.layout == "indented":
            kwargs["indent"] = 2
        elif self.layout == "tabbed":
            kwargs["indent"] = "\t"
        return (json.dumps(body, **kwargs) + self.trailing).encode("utf-8")


styles = st.builds(
    Style,
    st.booleans(),
    st.sampled_from(["compact", "spaced", "indented", "tabbed"]),
    st.sampled_from(["", "", "", "\n", " \r\n\t "]),
)


def _sized(
    topic: str, key: str, value: bytes, expect: Good | Bad, category: str, max_bytes: int
) -> Tagged:
    """Anything beyond the size limit is oversized, whatever else is wrong with it."""
    if len(value) > max_bytes:
        return Tagged(topic, key, value, Bad(_bad(R.OVERSIZED)), category + "+oversized")
    return Tagged(topic, key, value, expect, category)


@st.composite
def good_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    built = draw(good_built(topic))
    value = draw(styles).dumps(built.body)
    return _sized(
        topic, built.key, value, Good(built.event), f"good:{topic}:{built.label}", max_bytes
    )


# ---- faults in an otherwise good body ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    label: str
    path: tuple[str, ...]
    value: Any  # ABSENT removes the key
    reasons: frozenset[InvalidReason]
    also: tuple[tuple[str, Any], ...] = ()  # top-level attributes added with it


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _apply(body: dict[str, Any], fault: Fault) -> None:
    node = body
    for step in fault.path[:-1]:
        node = node[step]
    if fault.value is ABSENT:
        node.pop(fault.path[-1], None)
    else:
        node[fault.path[-1]] = fault.value
    body.update(fault.also)


@st.composite
def _control_char_in(draw: st.DrawFn, text: str, refused: str) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(refused)) + text[at:]


@st.composite
def _broken_value(draw: st.DrawFn, kind: str, current: Any) -> Any:
    """A wrong value for a data field of the given kind: (label, value, reason)."""
    wrong_type = st.tuples(st.just("wrong_type"), non_string_json, st.just(R.INVALID_DATA))
    if kind in ("id", "id?"):
        base = current if isinstance(current, str) and current else "x"
        return draw(
            st.one_of(
                wrong_type.filter(lambda t: kind == "id" or t[1] is not None),
                st.tuples(st.just("empty_id"), st.just(""), st.just(R.INVALID_DATA)),
                st.tuples(st.just("huge_id"), _long_text(257, 20_000), st.just(R.INVALID_DATA)),
                st.tuples(
                    st.just("control_char_id"),
                    _control_char_in(base, _C0),
                    st.just(R.INVALID_DATA),
                ),
            )
        )
    if kind in ("name", "name1"):
        base = current if isinstance(current, str) else "x"
        options = [
            wrong_type,
            st.tuples(st.just("huge_name"), _long_text(513, 20_000), st.just(R.INVALID_DATA)),
            st.tuples(
                st.just("control_char_name"),
                _control_char_in(base, _NAME_REFUSED),
                st.just(R.INVALID_DATA),
            ),
        ]
        if kind == "name1":
            options.append(st.tuples(st.just("empty_name"), st.just(""), st.just(R.INVALID_DATA)))
        return draw(st.one_of(options))
    if kind == "ip":
        return draw(
            st.one_of(
                wrong_type,
                st.tuples(st.just("invalid_ip"), invalid_ips(), st.just(R.INVALID_IP)),
            )
        )
    if kind == "bool":
        not_bool = st.one_of(
            st.none(),
            st.integers(-2, 2),
            st.floats(allow_nan=False),
            st.sampled_from(["true", "false", "", "yes"]),
            st.lists(st.booleans(), max_size=2),
            st.just({"value": True}),
        )
        return "wrong_type", draw(not_bool), R.INVALID_DATA
    if kind == "via":
        bad_via = st.one_of(
            non_string_json,
            st.sampled_from(["", "Console", "APP", "app ", " console", "phone", "\u0430pp"]),
            st.text(max_size=10).filter(lambda s: s not in ("console", "app")),
        )
        return "bad_changed_via", draw(bad_via), R.INVALID_DATA
    if kind == "address":
        shape = draw(st.sampled_from(["not_object", "missing", "sub_wrong_type", "sub_name"]))
        address = dict(current)
        if shape == "not_object":
            return "address_not_object", draw(non_string_json.filter(_not_dict)), R.INVALID_DATA
        if shape == "missing":
            address.pop(draw(st.sampled_from(ADDRESS_REQUIRED)))
            return "address_missing_field", address, R.INVALID_DATA
        field = draw(st.sampled_from(ADDRESS_FIELDS))
        if shape == "sub_wrong_type":
            address[field] = draw(non_string_json)
            return "address_wrong_type", address, R.INVALID_DATA
        label, address[field], reason = draw(_broken_value("name", address.get(field, "")))
        return f"address_{label}", address, reason
    if kind == "coords?":
        shape = draw(st.sampled_from(["not_object", "range", "missing", "wrong_type"]))
        if shape == "not_object":
            value = draw(non_string_json.filter(lambda v: v is not None and _not_dict(v)))
            return "coordinates_not_object", value, R.INVALID_DATA
        coords: dict[str, Any] = {"lat": draw(_LATS), "lon": draw(_LONS)}
        if shape == "range":
            coords[draw(st.sampled_from(["lat", "lon"]))] = draw(
                st.one_of(
                    st.floats(min_value=180, exclude_min=True, allow_infinity=False),
                    st.floats(max_value=-180, exclude_max=True, allow_infinity=False),
                    st.sampled_from([90.000001, -90.0000001, 1e308, -1e308]),
                )
            )
            if abs(coords["lon"]) <= 180 and abs(coords["lat"]) <= 90:
                coords["lat"] = 91
            return "coordinates_out_of_range", coords, R.INVALID_DATA
        field = draw(st.sampled_from(["lat", "lon"]))
        if shape == "missing":
            del coords[field]
            return "coordinates_missing_field", coords, R.INVALID_DATA
        coords[field] = draw(
            st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.lists(st.integers()))
        )
        return "coordinates_wrong_type", coords, R.INVALID_DATA
    # addresses
    shape = draw(st.sampled_from(["not_list", "item_type", "invalid_item", "invalid_item"]))
    items = list(current)
    if shape == "not_list":
        value = draw(
            st.one_of(st.none(), st.text(max_size=20), st.integers(), st.just({"a": "10.0.0.0/8"}))
        )
        return "addresses_not_list", value, R.INVALID_DATA
    at = draw(st.integers(0, len(items)))
    if shape == "item_type":
        items.insert(at, draw(non_string_json))
        return "addresses_item_wrong_type", items, R.INVALID_DATA
    items.insert(at, draw(invalid_address_items()))
    return "invalid_address_item", items, R.INVALID_IP


def _not_dict(value: Any) -> bool:
    return not isinstance(value, dict)


@st.composite
def faults(draw: st.DrawFn, built: Built) -> Fault:
    """One thing wrong with a good body, and the reason it must be refused with."""
    body = built.body
    session = built.topic == SESSION
    data: dict[str, Any] = body["data"]
    fields = (SESSION_FIELDS if session else DIRECTORY_FIELDS)[body["type"]]
    own_types = [k.value for k in (SessionEventKind if session else DirectoryEventKind)]
    other_types = [k.value for k in (DirectoryEventKind if session else SessionEventKind)]
    # Weighted towards the data, where the types differ most (Hypothesis also favours
    # the first entries of a list).
    families = [
        *["field_value"] * 5,
        *["missing_field", "time_value", "unknown_type"] * 2,
        "data_not_object",
        "missing_attribute",
        "renamed_attribute",
        "specversion",
        "attribute_type",
        "attribute_bounds",
        "time_type",
        "datacontenttype",
    ]
    family = draw(st.sampled_from(families))
    nce = _bad(R.NOT_CLOUDEVENT)
    if family in ("missing_attribute", "renamed_attribute"):
        attr = draw(st.sampled_from(["data", "type", "source", "id", "specversion"]))
        if family == "renamed_attribute":
            # The value moves to a look-alike (so unknown, ignored) attribute.
            alias = draw(st.sampled_from([attr.upper(), attr.title(), f"{attr}_", f"ce_{attr}"]))
            return Fault(f"renamed_{attr}", (attr,), ABSENT, nce, ((alias, body[attr]),))
        return Fault(f"missing_{attr}", (attr,), ABSENT, nce)
    if family == "specversion":
        value = draw(
            st.one_of(
                st.sampled_from(["0.3", "1", "1.0.0", " 1.0", "1.0\n", "", "v1.0", "2.0", "1,0"]),
                non_string_json,
                st.just(1.0),
            )
        )
        return Fault("bad_specversion", ("specversion",), value, nce)
    if family == "attribute_type":
        attr = draw(st.sampled_from(["id", "source", "type"]))
        return Fault(f"{attr}_wrong_type", (attr,), draw(non_string_json), nce)
    if family == "attribute_bounds":
        attr, limit = draw(st.sampled_from([("id", 512), ("source", 2048), ("type", 256)]))
        value = draw(st.one_of(st.just(""), _long_text(limit + 1, limit + 20_000)))
        return Fault(f"{attr}_{'empty' if not value else 'too_long'}", (attr,), value, nce)
    if family == "time_type":
        value = draw(non_string_json.filter(lambda v: v is not None))
        return Fault("time_wrong_type", ("time",), value, nce)
    if family == "datacontenttype":
        value = draw(
            st.one_of(
                st.sampled_from(
                    ["text/plain", "application/xml", "", "json", "Application/JSON", "*/*"]
                ),
                non_string_json.filter(lambda v: v is not None),
            )
        )
        return Fault("bad_datacontenttype", ("datacontenttype",), value, nce)
    if family == "unknown_type":
        value = draw(
            st.one_of(
                st.sampled_from(other_types),
                st.sampled_from(own_types).map(str.upper),
                st.sampled_from(own_types).map(lambda t: t + " "),
                st.sampled_from(own_types).map(lambda t: t.replace(".", "_")),
                st.text(_ANY_CHARS, min_size=1, max_size=40).filter(lambda t: t not in own_types),
                _long_text(100, 256),
            )
        )
        return Fault("unknown_type", ("type",), value, _bad(R.UNKNOWN_TYPE))
    if family == "data_not_object":
        value = draw(st.one_of(non_string_json.filter(_not_dict), st.text(max_size=10)))
        return Fault("data_not_object", ("data",), value, _bad(R.INVALID_DATA))
    if family == "missing_field":
        required = [f for f in fields if (body["type"], f) not in OPTIONAL_FIELDS]
        field = draw(st.sampled_from(required))
        return Fault(f"missing_{field}", ("data", field), ABSENT, _bad(R.INVALID_DATA))
    if family == "field_value":
        # The kind first, rarest first: ids are in every type and would crowd out the rest.
        kind = draw(st.sampled_from([k for k in _KIND_ORDER if k in fields.values()]))
        field = draw(st.sampled_from([f for f, k in fields.items() if k == kind]))
        label, value, reason = draw(_broken_value(kind, data.get(field)))
        return Fault(f"{field}:{label}", ("data", field), value, _bad(reason))
    # time_value
    if session:
        value = draw(st.one_of(st.just(ABSENT), st.none(), invalid_times(session=True)))
        label = "time_missing" if value is ABSENT else "time_null" if value is None else "time"
        return Fault(f"session_{label}", ("time",), value, _bad(R.INVALID_TIME))
    return Fault(
        "directory_time", ("time",), draw(invalid_times(session=False)), _bad(R.INVALID_TIME)
    )


@st.composite
def faulty_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    """A good event with one or two faults in different places."""
    if draw(st.integers(0, 4)) == 0:  # IP faults need a login or an IP group: make them common
        built = draw(_with_addresses(topic))
        field = "ip" if topic == SESSION else "addresses"
        label, value, reason = draw(_broken_value(field, built.body["data"][field]))
        chosen = [Fault(f"{field}:{label}", ("data", field), value, _bad(reason))]
    else:
        built = draw(good_built(topic))
        chosen = [draw(faults(built))]
    if draw(st.integers(0, 3)) == 0:
        second = draw(faults(built))
        if not _overlaps(second.path, chosen[0].path):
            chosen.append(second)
    body = copy.deepcopy(built.body)
    for fault in chosen:
        _apply(body, fault)
    reasons = frozenset().union(*(f.reasons for f in chosen))
    value = draw(styles).dumps(body)
    label = "+".join(f.label for f in chosen)
    key = draw(st.sampled_from([built.key, "k0", "k1", "k2", "k3"]))
    return _sized(topic, key, value, Bad(reasons), f"bad:{topic}:{label}", max_bytes)


# ---- faults in the bytes ------------------------------------------------------------

_MARK: Final = "\ue000\ue001mark\ue001\ue000"
_MARK_JSON: Final = json.dumps(_MARK, ensure_ascii=False).encode("utf-8")
INVALID_UTF8: Final = (
    b"\xff",
    b"\xfe\xff",
    b"\x80",
    b"\xc3",  # truncated two-byte sequence
    b"\xe2\x82",  # truncated three-byte sequence
    b"\xc0\x80",  # overlong NUL
    b"\xe0\x80\xaf",  # overlong '/'
    b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xf8\x88\x80\x80\x80",  # five-byte form
)
# Bytes that cannot start a JSON text (whitespace excluded: it may precede one).
NON_JSON_START: Final = b"\x00\x01\x08\x1b\x7f\x80\xfe\xff}]:,'<>#/\\xXINaAu=;*"
NON_JSON: Final = (
    b"",
    b" ",
    b"\n\t ",
    b"not json",
    b"{",
    b"}",
    b"{not json",
    b"{'single': 'quotes'}",
    b'{"a": }',
    b'{"a" 1}',
    b'{"a": 1,}',
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"undefined",
    b"<event/>",
    b'{"specversion": "1.0"',
    b'{"a": 01}',
    b'{"a": .5}',
    b'{"a": "unterminated}',
    b'{"a": "\\x41"}',
    b'{"a": "\\u12"}',
)


def _known_string_paths(body: dict[str, Any], fields: dict[str, str]) -> list[tuple[Any, ...]]:
    """Paths to the string values of known data fields."""
    data = body["data"]
    paths: list[tuple[Any, ...]] = []
    for field, kind in fields.items():
        value = data.get(field)
        if isinstance(value, str):
            paths.append(("data", field))
        elif kind == "address":
            paths.extend(("data", field, f) for f in ADDRESS_FIELDS if f in value)
        elif kind == "addresses":
            paths.extend(("data", field, i) for i in range(len(value)))
    return paths


def _put(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@st.composite
def _marked(draw: st.DrawFn, built: Built, wrap: bool) -> tuple[dict[str, Any], str]:
    """The body with a marker in one place; where it is (envelope, known, ignored).

    ``wrap``: the marker is inside a longer string, not a whole value.
    """
    body = copy.deepcopy(built.body)
    fields = (SESSION_FIELDS if built.topic == SESSION else DIRECTORY_FIELDS)[body["type"]]
    mark = ("a" + _MARK + "b") if wrap else _MARK
    where = draw(st.sampled_from(["envelope", "known", "ignored_attribute", "ignored_field"]))
    if where == "envelope":
        strings = sorted(a for a in _ENVELOPE_KNOWN - {"data"} if isinstance(body.get(a), str))
        attr = draw(st.sampled_from(strings))
        body[attr] = body[attr][:3] + mark if wrap else mark
    elif where == "known":
        known = _known_string_paths(body, fields)
        if not known:
            return draw(_marked(built, wrap))
        _put(body, draw(st.sampled_from(known)), mark)
    elif where == "ignored_attribute":
        name = draw(st.sampled_from(["ext", "x" + _MARK, "nested"]))
        body[name] = {"deeper": [mark]} if name == "nested" else mark
    else:
        body["data"]["x_" + draw(st.sampled_from(["a", _MARK]))] = mark
    return body, where


@st.composite
def byte_faulty_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    """Faults only the bytes can carry: bad UTF-8, truncation, nesting, not JSON..."""
    family = draw(
        st.sampled_from(
            [
                "none",
                "non_json",
                "non_json_bytes",
                "not_an_object",
                "not_a_cloudevent",
                "truncated",
                "trailing_garbage",
                "utf16",
                "invalid_utf8",
                "lone_surrogate",
                "deep_nesting",
                "deep_top_level",
            ]
        )
    )
    key = draw(st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5", "\u00e9", "k" * 200]))
    category = f"bad:{topic}:{family}"

    def tagged(value: bytes | None, *reasons: InvalidReason, label: str = "") -> Tagged:
        cat = category + (f":{label}" if label else "")
        if value is None:
            return Tagged(topic, key, None, Bad(_bad(*reasons)), cat)
        return _sized(topic, key, value, Bad(_bad(*reasons)), cat, max_bytes)

    if family == "none":
        return tagged(None, R.NOT_CLOUDEVENT)
    if family == "non_json":
        return tagged(draw(st.sampled_from(NON_JSON)), R.INVALID_JSON)
    if family == "non_json_bytes":
        first = bytes([draw(st.sampled_from(NON_JSON_START))])
        return tagged(first + draw(st.binary(max_size=200)), R.INVALID_JSON)
    if family == "not_an_object":
        value = draw(json_values.filter(_not_dict))
        return tagged(json.dumps(value).encode(), R.NOT_CLOUDEVENT)
    if family == "not_a_cloudevent":
        value = draw(
            st.dictionaries(st.text(max_size=12), json_values, max_size=6).filter(
                lambda d: not {"specversion", "id", "source", "type", "data"} <= d.keys()
            )
        )
        return tagged(json.dumps(value).encode(), R.NOT_CLOUDEVENT)
    if family == "deep_top_level":
        depth = draw(st.integers(6_000, 12_000))
        shape = draw(st.sampled_from(["list", "unclosed_list", "object"]))
        if shape == "list":
            value = b"[" * depth + b"]" * depth
        elif shape == "unclosed_list":
            value = b"[" * depth
        else:
            value = b'{"a":' * depth + b"1" + b"}" * depth
        return tagged(value, R.NOT_CLOUDEVENT, R.INVALID_JSON, label=shape)
    built = draw(good_built(topic))
    style = draw(styles)
    if family == "truncated":
        whole = style.dumps(built.body)
        end = len(whole.rstrip())
        return tagged(whole[: draw(st.integers(0, end - 1))], R.INVALID_JSON)
    if family == "trailing_garbage":
        tail = draw(st.sampled_from([b"x", b"}", b",", b"{}", b"\x00", b"\xff", b"[]", b"1"]))
        return tagged(style.dumps(built.body) + tail, R.INVALID_JSON)
    if family == "utf16":
        text = json.dumps(built.body)
        codec = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]))
        return tagged(text.encode(codec), R.INVALID_JSON)
    if family in ("invalid_utf8", "lone_surrogate"):
        body, where = draw(_marked(built, wrap=draw(st.booleans())))
        if family == "invalid_utf8":
            replacement = draw(st.sampled_from(INVALID_UTF8))
        else:
            replacement = draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\\ud83d", b"x\\udc00"]))
        encoded = json.dumps(body, ensure_ascii=False).encode("utf-8")
        value = encoded.replace(_MARK.encode("utf-8"), replacement)
        if where == "known":  # refused while decoding the data, or the whole message
            return tagged(value, R.INVALID_JSON, R.INVALID_DATA, label=where)
        return tagged(value, R.INVALID_JSON, label=where)
    # deep_nesting: in an ignored place, in data, or in a known attribute
    body, where = draw(_marked(built, wrap=False))
    depth = draw(st.integers(6_000, 12_000))
    shape = draw(st.sampled_from(["list", "object", "unclosed"]))
    if shape == "list":
        deep = b"[" * depth + b"]" * depth
    elif shape == "object":
        depth = depth * 3 // 4
        deep = b'{"":' * depth + b"0" + b"}" * depth
    else:
        deep = b"[" * depth
    value = json.dumps(body, ensure_ascii=False).encode("utf-8").replace(_MARK_JSON, deep)
    if where == "envelope":  # a known attribute of the wrong type, or too deep to read
        return tagged(value, R.NOT_CLOUDEVENT, R.INVALID_JSON, label=f"{where}:{shape}")
    if where == "known":
        return tagged(value, R.INVALID_JSON, R.INVALID_DATA, label=f"{where}:{shape}")
    return tagged(value, R.INVALID_JSON, label=f"{where}:{shape}")


# ---- big ones: at and beyond the size limit -----------------------------------------


def _padded(style: Style, body: dict[str, Any], size: int) -> bytes:
    """The body with an extra attribute that makes it exactly ``size`` bytes (if it can)."""
    padded = {**body, "zz_padding": ""}
    need = size - len(style.dumps(padded))
    padded["zz_padding"] = "p" * max(0, need)
    return style.dumps(padded)


@st.composite
def big_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    """Exactly at the limit (good) or beyond it (oversized), whatever the content."""
    family = draw(st.sampled_from(["at_limit", "over_good", "over_bad", "over_garbage"]))
    style = draw(styles)
    if family == "over_garbage":
        size = max_bytes + draw(st.integers(1, 4096))
        chunk = draw(st.binary(min_size=1, max_size=16))
        value = (chunk * (size // len(chunk) + 1))[:size]
        return Tagged(topic, "k0", value, Bad(_bad(R.OVERSIZED)), f"bad:{topic}:oversized_garbage")
    if family == "over_bad":
        bad = draw(faulty_messages(topic, max_bytes))
        assert bad.value is not None
        body_text = bad.value
        pad = b" " * (max_bytes + draw(st.integers(1, 2048)) - len(body_text))
        return Tagged(
            topic, bad.key, body_text + pad, Bad(_bad(R.OVERSIZED)), bad.category + "+oversized"
        )
    built = draw(good_built(topic))
    if family == "at_limit":
        value = _padded(style, built.body, max_bytes)
        if len(value) == max_bytes:
            return Tagged(topic, built.key, value, Good(built.event), f"good:{topic}:at_size_limit")
    value = _padded(style, built.body, max_bytes + draw(st.integers(1, 4096)))
    return _sized(
        topic, built.key, value, Bad(_bad(R.OVERSIZED)), f"bad:{topic}:oversized", max_bytes
    )


# ---- public -------------------------------------------------------------------------


def bad_messages(topic: str, max_bytes: int = MAX_EVENT_BYTES) -> st.SearchStrategy[Tagged]:
    """Bad messages of modest size (oversized ones only by accident)."""
    return st.one_of(faulty_messages(topic, max_bytes), byte_faulty_messages(topic, max_bytes))


def messages(
    topic: str, max_bytes: int = MAX_EVENT_BYTES, *, big: bool = True
) -> st.SearchStrategy[Tagged]:
    """Any tagged message of a topic: good, bad, and (``big``) at or over the size limit."""
    parts = [good_messages(topic, max_bytes), bad_messages(topic, max_bytes)]
    if big:
        parts.append(big_messages(topic, max_bytes))
    return st.one_of(parts)


def all_messages(max_bytes: int = MAX_EVENT_BYTES) -> st.SearchStrategy[Tagged]:
    return st.one_of(messages(SESSION, max_bytes), messages(DIRECTORY, max_bytes))


# Every category of hostile input the issue asks for, and the category labels (prefix
# matches) that show it was generated; see ``missing_categories``.
REQUIRED_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "wrong JSON types": ("wrong_type", "not_object", "not_list"),
    "missing fields": ("missing_",),
    "huge strings": ("huge_id", "huge_name", "too_long"),
    "oversized": ("oversized",),
    "nested garbage": ("deep_nesting", "deep_top_level"),
    "invalid UTF-8": ("invalid_utf8", "lone_surrogate", "utf16"),
    "non-JSON": ("non_json", "truncated", "trailing_garbage"),
    "JSON not an object": ("not_an_object",),
    "not CloudEvents": ("not_a_cloudevent", "bad_specversion", "missing_specversion"),
    "unknown types": ("unknown_type",),
    "bad times": ("time",),
    "control characters": ("control_char",),
    "invalid IPs": ("invalid_ip",),
    "invalid address items": ("invalid_address_item",),
    "null value": ("none",),
}


def missing_categories(sample: list[Tagged]) -> set[str]:
    """The required categories of which ``sample`` has no example."""
    words = {part for t in sample for part in _category_words(t.category)}
    return {
        name
        for name, needles in REQUIRED_CATEGORIES.items()
        if not any(needle in word for word in words for needle in needles)
    }


def _category_words(category: str) -> list[str]:
    return [w for part in category.split(":") for w in part.split("+")]
