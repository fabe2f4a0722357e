"""The wire form of network signals (docs/spec.md#signal-precedence): a session's ``network`` and an
IP
group's ``bssids`` and ``switches``, and their normalisation into values.

Apart from :mod:`consumers.wire` so each stays small; the directory file import uses
these too (through the IP group schema, and its validator item by item), so a file is
never looser than an event. A refused value comes back as a
:class:`~daemon.core.events.FieldError`, so the decoder's dead-letter detail and the
validator's path are both made from the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Final, Literal

import msgspec

from e911d.daemon.core.events import FieldError, Id
from e911d.daemon.core.network import (
    BadMac,
    NetworkSignals,
    SwitchRef,
    normalize_bssid_pattern,
    normalize_chassis_id,
    normalize_mac,
    normalize_port_id,
)

# Checked by daemon.core.network: every bad spelling is refused with its path.
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


def network_signals(data: SessionNetwork) -> NetworkSignals | FieldError | None:
    """The normalised signals, None when the client reported none (``{}``), or why the
    BSSID is refused.

    A session's BSSID is the access point's own address, never a pattern: a ``*``
    here is refused like any other malformed BSSID.
    """
    try:
        bssid = None if data.bssid is None else normalize_mac(data.bssid)
    except BadMac as exc:
        return FieldError("network", None, str(exc), "bssid")
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


def normalize_bssid_at(index: int, text: str) -> str | FieldError:
    """A group's ``bssids[index]`` normalised, or why not: the event decoder stops at the
    first refused one, the directory file validator reports each."""
    try:
        return normalize_bssid_pattern(text)
    except BadMac as exc:
        return FieldError("bssids", index, str(exc))


def normalize_switch_id_at(
    index: int, key: Literal["chassis_id", "port_id"], text: str
) -> str | FieldError:
    """A group's ``switches[index]`` chassis or port id normalised, or why not. An id of
    only spaces normalises to nothing, which no client could report: refused rather
    than stored as a key that never matches."""
    normalised = normalize_chassis_id(text) if key == "chassis_id" else normalize_port_id(text)
    return normalised or FieldError("switches", index, "is blank", key)


def normalize_bssids(items: Sequence[str]) -> tuple[str, ...] | FieldError:
    """Normalised, deduplicated in order; or the first refused one."""
    out: list[str] = []
    for i, item in enumerate(items):
        bssid = normalize_bssid_at(i, item)
        if isinstance(bssid, FieldError):
            return bssid
        out.append(bssid)
    return tuple(dict.fromkeys(out))


def normalize_switches(items: Sequence[IpGroupSwitch]) -> tuple[SwitchRef, ...] | FieldError:
    """Normalised, deduplicated in order; or the first refused id (a chassis before its
    port)."""
    out: list[SwitchRef] = []
    for i, item in enumerate(items):
        chassis = normalize_switch_id_at(i, "chassis_id", item.chassis_id)
        if isinstance(chassis, FieldError):
            return chassis
        port = None if item.port_id is None else normalize_switch_id_at(i, "port_id", item.port_id)
        if isinstance(port, FieldError):
            return port
        out.append(SwitchRef(chassis, port))
    return tuple(dict.fromkeys(out))
