"""The wire form of network signals (docs/spec.md#signal-precedence): a session's ``network`` and an
IP
group's ``bssids`` and ``switches``, and their normalisation into values.

Apart from :mod:`consumers.wire` so each stays small; the directory file import uses
these too (through the IP group schema), so a file is never looser than an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Final

import msgspec

from e911d.daemon.core.events import Id, Invalid, InvalidReason, exc_detail
from e911d.daemon.core.network import (
    BadMac,
    NetworkSignals,
    SwitchRef,
    normalize_bssid_pattern,
    normalize_chassis_id,
    normalize_mac,
    normalize_port_id,
)

# Checked by daemon.core.network: every bad spelling is invalid_data with its path.
BssidPatternText = Annotated[
    str,
    msgspec.Meta(
        max_length=64,
        description="A BSSID in any common MAC spelling (f0:6e:0b:c2:03:21, F0-6E-0B-C2-03-21, "
        "f06e.0bc2.0321, f06e0bc20321), or such a BSSID whose last hex digit is '*' (any).",
    ),
]
MAX_BSSIDS_PER_GROUP: Final = 10_000
MAX_SWITCHES_PER_GROUP: Final = 10_000


# ---- a session's network -------------------------------------------------------------

# A BSSID in any common MAC spelling; its form is checked by normalize_mac, so a bad
# one is invalid_data with a reason rather than a schema error naming a regex.
BssidText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        description="The Wi-Fi access point's BSSID, in any common MAC spelling "
        "(f0:6e:0b:c2:03:21, F0-6E-0B-C2-03-21, f06e.0bc2.0321, f06e0bc20321).",
    ),
]
# LLDP allows 255 octets for a chassis or port id; at least one visible character, no
# control characters (they would make logs lie).
_LLDP_TEXT = r"\A[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*\Z"
ChassisIdText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        pattern=_LLDP_TEXT,
        description="The switch's LLDP chassis id: a MAC address (any spelling) or a name.",
    ),
]
PortIdText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=255,
        pattern=_LLDP_TEXT,
        description="The switch port's LLDP port id (Gi1/0/12); compared case-insensitively.",
    ),
]


class SessionSwitch(msgspec.Struct, forbid_unknown_fields=False):
    """The switch (and, when known, the port) the client is wired to, as LLDP names them."""

    chassis_id: ChassisIdText
    port_id: PortIdText | None = None


class SessionNetwork(msgspec.Struct, forbid_unknown_fields=False):
    """What the client reports about the network it is on (docs/spec.md#network-signals); all
    optional."""

    bssid: BssidText | None = None
    switch: SessionSwitch | None = None


def network_signals(data: SessionNetwork) -> NetworkSignals | None:
    """The normalised signals, or None when the client reported none (``{}``).

    A session's BSSID is the access point's own address, never a pattern: a ``*``
    here is refused like any other malformed BSSID.
    """
    bssid = None if data.bssid is None else normalize_mac(data.bssid)
    switch = data.switch
    if bssid is None and switch is None:
        return None
    if switch is None:
        return NetworkSignals(bssid)
    port = None if switch.port_id is None else normalize_port_id(switch.port_id)
    return NetworkSignals(bssid, normalize_chassis_id(switch.chassis_id), port)


# ---- an IP group's signals ------------------------------------------------------------


class IpGroupSwitch(msgspec.Struct, forbid_unknown_fields=False):
    chassis_id: Annotated[
        Id,
        msgspec.Meta(
            description="The switch's LLDP chassis id: a MAC address in any common spelling, "
            "or any other id (compared case-insensitively)."
        ),
    ]
    port_id: Annotated[
        Id | None,
        msgspec.Meta(
            description="The LLDP port id (Gi1/0/12), compared case-insensitively; "
            "absent or null: any port of the switch."
        ),
    ] = None


def normalize_bssids(items: Sequence[str]) -> tuple[str, ...] | Invalid:
    """Normalised, deduplicated in order; a bad one is refused with its index, which the
    directory file import puts after the group's path."""
    out: list[str] = []
    for i, item in enumerate(items):
        try:
            out.append(normalize_bssid_pattern(item))
        except BadMac as exc:
            return Invalid(InvalidReason.INVALID_DATA, f"bssids[{i}]: {exc_detail(exc)}")
    return tuple(dict.fromkeys(out))


def normalize_switches(items: Sequence[IpGroupSwitch]) -> tuple[SwitchRef, ...] | Invalid:
    """Normalised, deduplicated in order. An id of only spaces normalises to nothing,
    which no client could report: refused rather than stored as a key that never matches."""
    out: list[SwitchRef] = []
    for i, item in enumerate(items):
        chassis = normalize_chassis_id(item.chassis_id)
        port = None if item.port_id is None else normalize_port_id(item.port_id)
        if not chassis:
            return Invalid(InvalidReason.INVALID_DATA, f"switches[{i}].chassis_id: is blank")
        if port == "":
            return Invalid(InvalidReason.INVALID_DATA, f"switches[{i}].port_id: is blank")
        out.append(SwitchRef(chassis, port))
    return tuple(dict.fromkeys(out))
