"""The values an explanation is made of, shared by the reasoning and the renderers.

They live apart from both so that the renderers depend on the shape of an answer
only, never on how it was reached, and the reasoning never on how it is printed.
The --ip and network parsers live here too: they are the one way to make an
:class:`IpInput` and the network signals, so the command and the tests accept
exactly what the daemon accepts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from e911d.daemon.core.ip import IPAddress, IPNetwork, parse_ip
from e911d.daemon.core.model import (
    Account,
    ConfirmedNetwork,
    Location,
    MatchedBy,
    Outcome,
    User,
    Verdict,
)
from e911d.daemon.core.network import (
    BadMac,
    NetworkSignals,
    normalize_chassis_id,
    normalize_mac,
    normalize_port_id,
)

# Status of the user's assigned location, as the rules see it.
ASSIGNED = "assigned"
NONE = "none"
DANGLING = "dangling"
UNKNOWN = "unknown"


class InvalidIp(ValueError):
    """The --ip value is not something the daemon would accept as a session's IP."""


class InvalidNetwork(ValueError):
    """A --bssid / --switch-chassis / --switch-port value a session event could not carry."""


@dataclass(frozen=True, slots=True)
class IpInput:
    """The IP as typed and as the daemon would store it (IPv4-mapped IPv6 → IPv4)."""

    text: str
    address: IPAddress
    ipv4_mapped: bool


def parse_input_ip(text: str) -> IpInput:
    """Same acceptance rules as session events, with a hint an operator can act on."""
    try:
        address = parse_ip(text)
    except ValueError as exc:
        raise InvalidIp(f"--ip {text[:80]!r} is not a valid IP address: {_ip_hint(text)}") from exc
    mapped = address.version == 4 and ":" in text
    return IpInput(text, address, mapped)


def _ip_hint(text: str) -> str:
    if not text:
        return "it is empty"
    if text != text.strip():
        return "remove the surrounding whitespace"
    if "%" in text:
        return "zone ids (the %... suffix) are not accepted"
    if "/" in text:
        return "give one address, not a network"
    if len(text) > 64:
        return "it is too long"
    if all(part.isdigit() for part in text.split(".")) and any(
        len(part) > 1 and part.startswith("0") for part in text.split(".")
    ):
        return "leading zeros are refused (some systems read them as octal)"
    return "expected an IPv4 (192.0.2.1) or IPv6 (2001:db8::1) address"


def parse_input_network(
    bssid: str | None, chassis_id: str | None, port_id: str | None
) -> NetworkSignals | None:
    """Normalised like a session event's ``network`` (daemon.core.network), so a BSSID
    typed in any spelling matches exactly what a check would match. None: no signal."""
    mac = None
    if bssid is not None:
        if bssid.endswith("*"):
            raise InvalidNetwork(
                f"--bssid {bssid[:80]!r}: a client reports one access point; "
                "'*' patterns belong in IP groups"
            )
        try:
            mac = normalize_mac(bssid)
        except BadMac:
            raise InvalidNetwork(
                f"--bssid {bssid[:80]!r} is not a MAC address: expected e.g. "
                "f0:6e:0b:c2:03:21, F0-6E-0B-C2-03-21 or f06e.0bc2.0321"
            ) from None
    if port_id is not None and chassis_id is None:
        raise InvalidNetwork(
            "--switch-port needs --switch-chassis: a port id means nothing without its switch"
        )
    chassis = port = None
    if chassis_id is not None:
        chassis = normalize_chassis_id(chassis_id)
        if not chassis or not chassis.isprintable():
            raise InvalidNetwork(f"--switch-chassis {chassis_id[:80]!r} is empty or unprintable")
    if port_id is not None:
        port = normalize_port_id(port_id)
        if not port or not port.isprintable():
            raise InvalidNetwork(f"--switch-port {port_id[:80]!r} is empty or unprintable")
    signals = NetworkSignals(mac, chassis, port)
    return None if signals.empty else signals


def on_off(flag: bool) -> str:
    """One wording of a toggle, so the reasoning and the text output never differ."""
    return "on" if flag else "off"


@dataclass(frozen=True, slots=True)
class StoredSession:
    """What ``explain --session`` takes from a stored session: whose, and where it was."""

    account_id: str
    user_id: str
    ip: str
    network: NetworkSignals | None
    ended: bool


@dataclass(frozen=True, slots=True)
class ActiveSession:
    session_id: str
    ip: str
    logged_in_at: dt.datetime
    open_alert_id: str | None = None
    open_alert_fingerprint: str | None = None
    open_alert_raised_at: dt.datetime | None = None
    # Fingerprints the user dismissed on this session, with when each snooze ends: a
    # mismatch with one of them is not raised again until then ("why no alert?").
    snoozed: tuple[tuple[str, dt.datetime], ...] = ()

    def snoozed_until(self, fingerprint: str | None) -> dt.datetime | None:
        return next((until for fp, until in self.snoozed if fp == fingerprint), None)


@dataclass(frozen=True, slots=True)
class EffectiveSetting:
    enabled: bool | None  # None: the account or the user is unknown
    reason: str


@dataclass(frozen=True, slots=True)
class AssignedLocation:
    status: str  # ASSIGNED, NONE, DANGLING or UNKNOWN
    location_id: str | None
    name: str | None
    description: str


@dataclass(frozen=True, slots=True)
class ContainingGroup:
    """An IP group with a network that contains the IP (its most specific one)."""

    ip_group_id: str
    name: str
    location_id: str | None
    location_name: str | None
    network: IPNetwork
    address_item: str | None  # the raw entry (address, CIDR, range) that gave the network
    counted: bool
    ignored_reason: str | None
    winner: bool
    locating: bool = True

    @property
    def prefix_len(self) -> int:
        return self.network.prefixlen


@dataclass(frozen=True, slots=True)
class Winner:
    """The IP signal's longest-prefix hit (which decides only if no higher signal did)."""

    prefix_len: int
    network: IPNetwork
    ip_group_ids: tuple[str, ...]
    locations: tuple[Location, ...]
    locating: bool = True


@dataclass(frozen=True, slots=True)
class SignalRow:
    """One signal the session presents and what it matched in the account
    (docs/spec.md#signal-precedence).

    ``value`` is the signal as compared (normalised, colon spelling for MACs);
    ``key`` what it matched (a BSSID pattern, the IP's network), empty when nothing.
    ``locating`` is False when a non-locating group matched at this level.
    ``decided``: the first signal, by precedence, that matched anything.
    """

    signal: MatchedBy
    value: str
    key: str
    ip_group_ids: tuple[str, ...]
    locations: tuple[Location, ...]
    locating: bool
    decided: bool

    @property
    def matched(self) -> bool:
        return bool(self.ip_group_ids)


@dataclass(frozen=True, slots=True)
class Explanation:
    account_id: str
    account: Account | None
    user_id: str
    user: User | None
    effective: EffectiveSetting
    assigned: AssignedLocation
    ip: IpInput
    containing_groups: tuple[ContainingGroup, ...]
    winner: Winner | None
    verdict: Verdict
    sentence: str
    sessions: tuple[ActiveSession, ...]
    network: NetworkSignals | None = None
    signals: tuple[SignalRow, ...] = ()
    # The user's confirmed networks (docs/spec.md#networks-a-user-confirmed); the one that
    # decided, if any, is ``verdict.confirmed``.
    confirmed: tuple[ConfirmedNetwork, ...] = ()

    @property
    def decided(self) -> SignalRow | None:
        """The signal that located the session, whatever the outcome made of it."""
        return next((s for s in self.signals if s.decided), None)

    @property
    def outcome(self) -> Outcome:
        return self.verdict.outcome

    @property
    def fingerprint(self) -> str | None:
        return self.verdict.fingerprint
