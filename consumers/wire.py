"""The wire form of the inbound events (docs/spec.md#session-events-topic, #directory-events-topic)
and their decoding.

Decoding never raises on bad input: it returns either a decoded event or an
:class:`~daemon.core.events.Invalid` carrying the reason that goes to the dead-letter
topic and the ``e911_events_invalid_total{reason}`` metric.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Annotated, Any, Final

import msgspec

from e911d.consumers.envelope import Envelope, Headers, decode_envelope, parse_time
from e911d.consumers.wire_network import (
    MAX_BSSIDS_PER_GROUP,
    MAX_SWITCHES_PER_GROUP,
    BssidPatternText,
    IpGroupSwitch,
    SessionNetwork,
    network_signals,
    normalize_bssids,
    normalize_switches,
)
from e911d.daemon.core.events import (
    AccountDeleted,
    AccountUpserted,
    Address,
    Coordinates,
    DirectoryChange,
    DirectoryEvent,
    DirectoryEventKind,
    FieldError,
    Id,
    Invalid,
    InvalidReason,
    IpGroupDeleted,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    Name,
    SessionEvent,
    SessionEventKind,
    UserDeleted,
    UserLocationChanged,
    UserUpserted,
    exc_detail,
)
from e911d.daemon.core.ip import BadIp, IPNetwork, parse_address_item, parse_ip

# Any string: its length and form are checked by parse_ip, so every bad IP is invalid_ip.
IpText = Annotated[str, msgspec.Meta(description="An IPv4 or IPv6 address, without a zone id.")]
AddressItem = Annotated[
    str,
    msgspec.Meta(
        description="An address, a CIDR network (host bits zero) or an inclusive range "
        "'first-last' of one family."
    ),
]
MAX_ADDRESSES_PER_GROUP: Final = 10_000


# ---- session events -----------------------------------------------------------------


class _SessionData(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    user_id: Id
    session_id: Id


class _SessionIpData(_SessionData, forbid_unknown_fields=False):
    ip: IpText
    network: SessionNetwork | None = None


class _DismissData(_SessionData, forbid_unknown_fields=False):
    alert_id: Id


# ---- directory events ---------------------------------------------------------------


class _AccountUpserted(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    e911_recommendations: bool


class _AccountKey(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id


class _UserUpserted(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    user_id: Id
    e911_recommendations: bool
    e911_location_id: Id | None = None


class _UserLocationChanged(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    user_id: Id
    e911_location_id: Id | None
    changed_via: Annotated[str, msgspec.Meta(pattern=r"\A(console|app)\Z")]
    session_id: Annotated[
        Id | None,
        msgspec.Meta(
            description="The session from which the app made the change: what it "
            "teaches is keyed by that session's network. Optional."
        ),
    ] = None


class _UserKey(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    user_id: Id


class _LocationUpserted(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    location_id: Id
    name: Annotated[Name, msgspec.Meta(min_length=1)]
    address: Address
    coordinates: Coordinates | None = None


class _LocationKey(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    location_id: Id


class _IpGroupUpserted(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    ip_group_id: Id
    name: Name
    # Required, but may be empty: a group may be located by its bssids or switches only.
    addresses: Annotated[list[AddressItem], msgspec.Meta(max_length=MAX_ADDRESSES_PER_GROUP)]
    location_id: Id | None = None
    bssids: Annotated[list[BssidPatternText], msgspec.Meta(max_length=MAX_BSSIDS_PER_GROUP)] = []
    switches: Annotated[list[IpGroupSwitch], msgspec.Meta(max_length=MAX_SWITCHES_PER_GROUP)] = []
    locating: Annotated[
        bool,
        msgspec.Meta(
            description="false: a VPN egress, a carrier NAT: when this group decides the "
            "match, the outcome is undetermined (no alert)."
        ),
    ] = True


class _IpGroupKey(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    ip_group_id: Id


# ---- decoders -----------------------------------------------------------------------

_SESSION_DATA: Final[dict[str, type[msgspec.Struct]]] = {
    SessionEventKind.LOGIN: _SessionIpData,
    SessionEventKind.IP_CHANGED: _SessionIpData,
    SessionEventKind.LOGOUT: _SessionData,
    SessionEventKind.ALERT_DISMISSED: _DismissData,
}
_DIRECTORY_DATA: Final[dict[str, type[msgspec.Struct]]] = {
    DirectoryEventKind.ACCOUNT_UPSERTED: _AccountUpserted,
    DirectoryEventKind.ACCOUNT_DELETED: _AccountKey,
    DirectoryEventKind.USER_UPSERTED: _UserUpserted,
    DirectoryEventKind.USER_LOCATION_CHANGED: _UserLocationChanged,
    DirectoryEventKind.USER_DELETED: _UserKey,
    DirectoryEventKind.LOCATION_UPSERTED: _LocationUpserted,
    DirectoryEventKind.LOCATION_DELETED: _LocationKey,
    DirectoryEventKind.IP_GROUP_UPSERTED: _IpGroupUpserted,
    DirectoryEventKind.IP_GROUP_DELETED: _IpGroupKey,
}
_decoders: dict[type[msgspec.Struct], msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t) for t in {*_SESSION_DATA.values(), *_DIRECTORY_DATA.values()}
}


def _typed_data(
    value: bytes | None,
    max_bytes: int,
    schemas: Mapping[str, type[msgspec.Struct]],
    headers: Headers,
) -> tuple[Envelope, Any] | Invalid:
    """The envelope and its data, decoded by the schema that its type names on this topic."""
    env = decode_envelope(value, max_bytes, headers)
    if isinstance(env, Invalid):
        return env
    schema = schemas.get(env.type)
    if schema is None:
        return Invalid(InvalidReason.UNKNOWN_TYPE, f"type {env.type[:100]!r}")
    try:
        return env, _decoders[schema].decode(env.data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        return Invalid(InvalidReason.INVALID_DATA, exc_detail(exc))


def decode_session_event(
    value: bytes | None,
    max_bytes: int,
    not_after: dt.datetime | None = None,
    headers: Headers = (),
) -> SessionEvent | Invalid:
    """``not_after``: the latest acceptable event time (now plus the allowed clock skew).

    A session event stamped in the future would anchor a schedule hours away and make
    every correctly stamped later event look stale, freezing the session's IP.
    ``headers``: the Kafka record's, read in the CloudEvents binary content mode.
    """
    decoded = _typed_data(value, max_bytes, _SESSION_DATA, headers)
    if isinstance(decoded, Invalid):
        return decoded
    env, data = decoded
    try:
        when = parse_time(env.time, required=True)
    except ValueError as exc:
        return Invalid(InvalidReason.INVALID_TIME, exc_detail(exc))
    assert when is not None  # noqa: S101  required=True
    if not_after is not None and when > not_after:
        ahead = (when - not_after).total_seconds()
        return Invalid(
            InvalidReason.INVALID_TIME,
            f"time {env.time!r} is {ahead:.0f} s beyond the allowed skew",
        )
    ip = network = None
    if isinstance(data, _SessionIpData):
        try:
            ip = parse_ip(data.ip)
        except BadIp as exc:
            return Invalid(InvalidReason.INVALID_IP, exc_detail(exc))
        if data.network is not None:
            signals = network_signals(data.network)
            if isinstance(signals, FieldError):
                return signals.invalid(InvalidReason.INVALID_DATA)
            network = signals
    return SessionEvent(
        kind=SessionEventKind(env.type),
        event_id=env.id,
        time=when,
        account_id=data.account_id,
        user_id=data.user_id,
        session_id=data.session_id,
        ip=ip,
        alert_id=data.alert_id if isinstance(data, _DismissData) else None,
        network=network,
    )


def _directory_change(data: Any) -> DirectoryChange | Invalid:
    match data:
        case _AccountUpserted():
            return AccountUpserted(data.account_id, data.e911_recommendations)
        case _AccountKey():
            return AccountDeleted(data.account_id)
        case _UserUpserted():
            return UserUpserted(
                data.account_id, data.user_id, data.e911_recommendations, data.e911_location_id
            )
        case _UserLocationChanged():
            return UserLocationChanged(
                data.account_id,
                data.user_id,
                data.e911_location_id,
                data.changed_via,
                data.session_id,
            )
        case _UserKey():
            return UserDeleted(data.account_id, data.user_id)
        case _LocationUpserted():
            coords = data.coordinates
            if coords is not None and not (math.isfinite(coords.lat) and math.isfinite(coords.lon)):
                return Invalid(InvalidReason.INVALID_DATA, "coordinates must be finite")
            return LocationUpserted(
                data.account_id, data.location_id, data.name, data.address, coords
            )
        case _LocationKey():
            return LocationDeleted(data.account_id, data.location_id)
        case _IpGroupUpserted():
            return _ip_group_upserted(data)
        case _IpGroupKey():
            return IpGroupDeleted(data.account_id, data.ip_group_id)
    raise AssertionError(f"unhandled directory schema {type(data).__name__}")


def parse_address_at(index: int, text: str) -> list[IPNetwork] | FieldError:
    """A group's ``addresses[index]`` as exact CIDRs, or why not: the event decoder stops
    at the first refused one, the directory file validator reports each."""
    try:
        return parse_address_item(text)
    except BadIp as exc:
        return FieldError("addresses", index, str(exc))


def _ip_group_upserted(data: _IpGroupUpserted) -> IpGroupUpserted | Invalid:
    networks: list[IPNetwork] = []
    for i, item in enumerate(data.addresses):
        nets = parse_address_at(i, item)
        if isinstance(nets, FieldError):
            return nets.invalid(InvalidReason.INVALID_IP)
        networks.extend(nets)
    bssids = normalize_bssids(data.bssids)
    if isinstance(bssids, FieldError):
        return bssids.invalid(InvalidReason.INVALID_DATA)
    switches = normalize_switches(data.switches)
    if isinstance(switches, FieldError):
        return switches.invalid(InvalidReason.INVALID_DATA)
    return IpGroupUpserted(
        data.account_id,
        data.ip_group_id,
        data.name,
        data.location_id,
        tuple(dict.fromkeys(networks)),
        tuple(data.addresses),
        bssids,
        switches,
        data.locating,
    )


def decode_directory_event(
    value: bytes | None, max_bytes: int, headers: Headers = ()
) -> DirectoryEvent | Invalid:
    decoded = _typed_data(value, max_bytes, _DIRECTORY_DATA, headers)
    if isinstance(decoded, Invalid):
        return decoded
    env, data = decoded
    try:
        when = parse_time(env.time, required=False)
    except ValueError as exc:
        return Invalid(InvalidReason.INVALID_TIME, exc_detail(exc))
    change = _directory_change(data)
    if isinstance(change, Invalid):
        return change
    return DirectoryEvent(DirectoryEventKind(env.type), env.id, when, change)


# The data schema of every inbound type, by topic: the event contracts are generated
# from these (daemon/commands/contracts.py), so a field added here is in the published schemas.
SESSION_DATA: Final[Mapping[str, type[msgspec.Struct]]] = _SESSION_DATA
DIRECTORY_DATA: Final[Mapping[str, type[msgspec.Struct]]] = _DIRECTORY_DATA

# The upsert data schemas and their conversion to changes, shared with the directory
# file import so that a file can never be looser (or stricter) than an event.
AccountUpsertedData = _AccountUpserted
UserUpsertedData = _UserUpserted
LocationUpsertedData = _LocationUpserted
IpGroupUpsertedData = _IpGroupUpserted
directory_change = _directory_change
