"""The network a session is on, as one key (docs/spec.md#networks-a-user-confirmed).

Learning from users needs a name for "this network" that does not depend on the
administrator's map: what a user confirmed there, and which networks carry sessions
that no group locates, are both remembered per key. The key is the session's most
specific signal, because a home Wi-Fi access point is one home while a carrier's /24
may be a thousand of them: its BSSID; otherwise its switch chassis and port; otherwise
the prefix of its IP address (/24 for IPv4, /56 for IPv6 by default, both settings).

Standard library only, so the pure evaluation can use it.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Final

from e911d.daemon.core.ip import IPAddress
from e911d.daemon.core.network import (
    NetworkSignals,
    format_bssid,
    format_chassis_id,
)

DEFAULT_IPV4_PREFIX: Final = 24
DEFAULT_IPV6_PREFIX: Final = 56
# Control characters never occur in a normalised chassis or port id (decoding refuses
# them): the join is unambiguous, and split back for display and for directory files.
_PORT_SEP: Final = "\x1f"


class NetworkKeyKind(enum.StrEnum):
    """Which signal a key was taken from, most specific first."""

    BSSID = "bssid"
    SWITCH_PORT = "switch_port"
    IP_PREFIX = "ip_prefix"


@dataclass(frozen=True, slots=True, order=True)
class NetworkKey:
    """One network, as stored: ``value`` is twelve hex digits (BSSID), chassis and port
    joined by a control character (switch port), or a CIDR network (IP prefix)."""

    kind: NetworkKeyKind
    value: str

    @property
    def chassis_port(self) -> tuple[str, str]:
        """The normalised chassis and port ids of a switch-port key."""
        if self.kind is not NetworkKeyKind.SWITCH_PORT:
            raise ValueError(f"{self.kind} key has no switch port")
        chassis, _, port = self.value.partition(_PORT_SEP)
        return chassis, port

    @property
    def display(self) -> str:
        """How people read it: ``f0:6e:0b:c2:03:21``, ``sw-3 port gi1/0/12``, ``203.0.113.0/24``."""
        if self.kind is NetworkKeyKind.BSSID:
            return format_bssid(self.value)
        if self.kind is NetworkKeyKind.SWITCH_PORT:
            chassis, port = self.chassis_port
            return f"{format_chassis_id(chassis)} port {port}"
        return self.value


def bssid_key(bssid: str) -> NetworkKey:
    return NetworkKey(NetworkKeyKind.BSSID, bssid)


def switch_port_key(chassis_id: str, port_id: str) -> NetworkKey:
    return NetworkKey(NetworkKeyKind.SWITCH_PORT, chassis_id + _PORT_SEP + port_id)


def ip_prefix_key(
    ip: IPAddress,
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
) -> NetworkKey:
    """The network of ``ip`` at the configured prefix length for its family."""
    length = ipv4_prefix if ip.version == 4 else ipv6_prefix
    net = ipaddress.ip_network((ip, length), strict=False)
    return NetworkKey(NetworkKeyKind.IP_PREFIX, str(net))


def network_keys(
    ip: IPAddress,
    network: NetworkSignals | None,
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
) -> tuple[NetworkKey, ...]:
    """Every key the session has, most specific first: the lookup order of confirmed
    entries (BSSID, then switch port, then IP prefix). The first is the key learned."""
    keys: list[NetworkKey] = []
    if network is not None:
        if network.bssid is not None:
            keys.append(bssid_key(network.bssid))
        if network.chassis_id is not None and network.port_id is not None:
            keys.append(switch_port_key(network.chassis_id, network.port_id))
    keys.append(ip_prefix_key(ip, ipv4_prefix, ipv6_prefix))
    return tuple(keys)


def network_key(
    ip: IPAddress,
    network: NetworkSignals | None,
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
) -> NetworkKey:
    """The session's most specific key: the one a confirmation is remembered under and
    an unconfigured network is recorded under."""
    return network_keys(ip, network, ipv4_prefix, ipv6_prefix)[0]
