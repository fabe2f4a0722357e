"""Network signals beyond IP (docs/spec.md#network-signals): Wi-Fi access points and switch ports.

Clients, controllers and switches spell a MAC address in half a dozen ways
(``F0-6E-0B-C2-03-21``, ``f06e.0bc2.0321``, macOS's ``f0:6e:b:c2:3:21``); a session
event and an IP group must agree on one spelling or an access point that matches in
the console would never match in a check. Everything is normalised here, once, at
the edge (event decoding, directory import), to twelve lowercase hex digits; a
pattern keeps its trailing ``*`` (any last hex digit). Standard library only, so the
pure evaluation can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

WILDCARD: Final = "*"
_HEX: Final = frozenset("0123456789abcdef")
_MAX_TEXT: Final = 64


class BadMac(ValueError):
    """A refused MAC address or BSSID pattern; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class SwitchRef:
    """A switch (``port_id`` None: any of its ports) or one port of it, normalised."""

    chassis_id: str
    port_id: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkSignals:
    """What a session's client reports about the network it is on (all optional)."""

    bssid: str | None = None
    chassis_id: str | None = None
    port_id: str | None = None

    @property
    def empty(self) -> bool:
        return self.bssid is None and self.chassis_id is None


def _octets(text: str) -> list[str] | None:
    """Hex digits per spelling, or None when ``text`` is none of the known ones."""
    for sep in (":", "-"):
        if sep in text:
            parts = text.split(sep)
            if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
                return None
            return [p.rjust(2, "0") for p in parts]
    if "." in text:
        parts = text.split(".")
        if len(parts) != 3 or not all(len(p) == 4 for p in parts):
            return None
        return [p[i : i + 2] for p in parts for i in (0, 2)]
    if len(text) == 12:
        return [text[i : i + 2] for i in range(0, 12, 2)]
    return None


def normalize_mac(text: str) -> str:
    """Twelve lowercase hex digits, from any common spelling of a MAC address."""
    if not isinstance(text, str) or not text or len(text) > _MAX_TEXT:
        raise BadMac(f"{str(text)[:80]!r} is not a MAC address")
    octets = _octets(text.strip().lower())
    digits = "".join(octets) if octets is not None else ""
    if len(digits) != 12 or not set(digits) <= _HEX:
        raise BadMac(f"{text[:80]!r} is not a MAC address")
    return digits


def normalize_bssid_pattern(text: str) -> str:
    """A BSSID as :func:`normalize_mac`, or eleven hex digits and ``*``.

    The wildcard stands for the last hex digit only: an access point serves its
    SSIDs on neighbouring BSSIDs that differ in that digit, and a wider wildcard
    would let one group claim a whole vendor's range.
    """
    if not isinstance(text, str):
        return normalize_mac(text)
    stripped = text.strip()
    if not stripped.endswith(WILDCARD):
        if WILDCARD in stripped:
            raise BadMac(f"{text[:80]!r}: '*' may only replace the last hex digit")
        return normalize_mac(text)
    body = stripped.lower()[:-1]
    if len(body) > _MAX_TEXT or WILDCARD in body:
        raise BadMac(f"{text[:80]!r}: '*' may only replace the last hex digit")
    # The wildcard replaces one digit: spell it with a 0 and parse the whole.
    try:
        digits = normalize_mac(body + "0")
    except BadMac:
        raise BadMac(
            f"{text[:80]!r} is not a BSSID pattern ('*' may only replace the last hex digit)"
        ) from None
    # "f0:6e:0b:c2:03:*" would parse as a one-digit last octet: refuse it, the star
    # must follow the octet's first digit.
    if body.endswith((":", "-", ".")):
        raise BadMac(f"{text[:80]!r}: '*' may only replace the last hex digit")
    return digits[:11] + WILDCARD


def normalize_chassis_id(text: str) -> str:
    """A switch's chassis id: a MAC spelling is normalised like one; any other LLDP
    chassis id (a name, a network address) is compared case-insensitively."""
    try:
        return normalize_mac(text)
    except BadMac:
        return text.strip().casefold()


def normalize_port_id(text: str) -> str:
    """Port ids (``Gi1/0/12``) are compared case-insensitively, without edge spaces."""
    return text.strip().casefold()


def bssid_candidates(bssid: str) -> tuple[str, str]:
    """The exact key and the wildcard key a normalised BSSID may match, exact first."""
    return bssid, bssid[:11] + WILDCARD


def format_bssid(normalised: str) -> str:
    """The colon spelling people read (``f0:6e:0b:c2:03:2*``), for export and explain."""
    return ":".join(normalised[i : i + 2] for i in range(0, 12, 2))


def format_chassis_id(normalised: str) -> str:
    """A MAC chassis id in colon spelling; any other chassis id as stored."""
    if len(normalised) == 12 and set(normalised) <= _HEX:
        return format_bssid(normalised)
    return normalised
