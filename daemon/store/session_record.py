"""What every read of a session row decodes the same way: its address, its network
signals, and its user's confirmed networks (the reads that aggregate them)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import asyncpg

from e911d.daemon.core.confirmed_network import KeyPrefixes, UserConfirmed
from e911d.daemon.core.ip import IPAddress
from e911d.daemon.core.model import ConfirmedNetwork
from e911d.daemon.core.network import NetworkSignals
from e911d.daemon.core.network_key import NetworkKey, NetworkKeyKind


def session_address(r: asyncpg.Record) -> IPAddress:
    """The session's IP as the driver decoded it (from binary: no text parsing).

    A host address decodes to an address; anything else to an interface. The text
    form (``ip``) stays what alerts carry.
    """
    value = r["ip_value"]
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value.ip
    return ipaddress.ip_address(r["ip"])


def session_network(r: asyncpg.Record) -> NetworkSignals | None:
    """The session's stored signals; most sessions report none, and those allocate
    nothing here (a million of them per tick)."""
    bssid, chassis, port = r["bssid"], r["switch_chassis"], r["switch_port"]
    if bssid is None and chassis is None and port is None:
        return None
    return NetworkSignals(bssid, chassis, port)


def user_confirmed(
    r: asyncpg.Record, account_id: str, user_id: str, prefixes: KeyPrefixes
) -> UserConfirmed | None:
    """The user's confirmed networks from the arrays the read aggregated; None
    (nothing allocated) for the users who have none."""
    if r["confirmed_kinds"] is None:
        return None
    entries = entries_of_arrays(
        account_id, user_id, r["confirmed_kinds"], r["confirmed_keys"], r["confirmed_locations"]
    )
    return UserConfirmed(account_id, user_id, entries, prefixes)


def entries_of_arrays(
    account_id: str,
    user_id: str,
    kinds: Sequence[str] | None,
    keys: Sequence[str] | None,
    locations: Sequence[str] | None,
) -> tuple[ConfirmedNetwork, ...]:
    """The entries a check row carries as three parallel arrays (None: the user has none)."""
    if not kinds or not keys or not locations:
        return ()
    out: list[ConfirmedNetwork] = []
    for kind, key, location_id in zip(kinds, keys, locations, strict=False):
        try:
            key_of = NetworkKey(NetworkKeyKind(kind), key)
            out.append(ConfirmedNetwork(account_id, user_id, key_of, location_id))
        except ValueError:
            continue
    return tuple(out)
