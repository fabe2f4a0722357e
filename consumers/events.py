"""The inbound event contracts (SPEC §3.1, §3.2) and their decoding.

Decoding never raises on bad input: it returns either a decoded event or an
:class:`Invalid` carrying the reason that goes to the dead-letter topic and the
``e911_events_invalid_total{reason}`` metric.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec

from e911d.consumers.ip import BadIp, IPAddress, IPNetwork, parse_address_item, parse_ip

# Ids: non-empty, bounded, no control characters (they would make logs and keys lie).
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"\A[^\x00-\x1f\x7f]+\Z")]
Name = Annotated[str, msgspec.Meta(max_length=512, pattern=r"\A[^\x00-\x08\x0b-\x1f\x7f]*\Z")]
# Any string: its length and form are checked by parse_ip, so every bad IP is invalid_ip.
IpText = str
MAX_ADDRESSES_PER_GROUP: Final = 10_000


class InvalidReason(enum.StrEnum):
    OVERSIZED = "oversized"
    INVALID_JSON = "invalid_json"
    NOT_CLOUDEVENT = "not_cloudevent"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_DATA = "invalid_data"
    INVALID_IP = "invalid_ip"
    INVALID_TIME = "invalid_time"
    # Decoded fine but refused by the database for good (a constraint, a value it cannot
    # store); found by replaying the refused batch one event at a time.
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: InvalidReason
    detail: str


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    specversion: str
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    data: msgspec.Raw
    time: str | None = None
    datacontenttype: str | None = None


# ---- session events -----------------------------------------------------------------


class _SessionData(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    user_id: Id
    session_id: Id


class _SessionIpData(_SessionData, forbid_unknown_fields=False):
    ip: IpText


class _DismissData(_SessionData, forbid_unknown_fields=False):
    alert_id: Id


class SessionEventKind(enum.StrEnum):
    LOGIN = "e911.session.login"
    IP_CHANGED = "e911.session.ip_changed"
    LOGOUT = "e911.session.logout"
    ALERT_DISMISSED = "e911.alert.dismissed"


@dataclass(frozen=True, slots=True)
class SessionEvent:
    kind: SessionEventKind
    event_id: str
    time: dt.datetime
    account_id: str
    user_id: str
    session_id: str
    ip: IPAddress | None = None
    alert_id: str | None = None


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


class _UserKey(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    user_id: Id


class Address(msgspec.Struct, forbid_unknown_fields=False, frozen=True):
    street: Name
    city: Name
    country: Name
    region: Name = ""
    postal_code: Name = ""


class Coordinates(msgspec.Struct, forbid_unknown_fields=False, frozen=True):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]


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
    addresses: Annotated[list[IpText], msgspec.Meta(max_length=MAX_ADDRESSES_PER_GROUP)]
    location_id: Id | None = None


class _IpGroupKey(msgspec.Struct, forbid_unknown_fields=False):
    account_id: Id
    ip_group_id: Id


class DirectoryEventKind(enum.StrEnum):
    ACCOUNT_UPSERTED = "e911.account.upserted"
    ACCOUNT_DELETED = "e911.account.deleted"
    USER_UPSERTED = "e911.user.upserted"
    USER_LOCATION_CHANGED = "e911.user.location_changed"
    USER_DELETED = "e911.user.deleted"
    LOCATION_UPSERTED = "e911.location.upserted"
    LOCATION_DELETED = "e911.location.deleted"
    IP_GROUP_UPSERTED = "e911.ip_group.upserted"
    IP_GROUP_DELETED = "e911.ip_group.deleted"


@dataclass(frozen=True, slots=True)
class AccountUpserted:
    account_id: str
    e911_recommendations: bool


@dataclass(frozen=True, slots=True)
class AccountDeleted:
    account_id: str


@dataclass(frozen=True, slots=True)
class UserUpserted:
    account_id: str
    user_id: str
    e911_recommendations: bool
    e911_location_id: str | None


@dataclass(frozen=True, slots=True)
class UserLocationChanged:
    account_id: str
    user_id: str
    e911_location_id: str | None
    changed_via: str


@dataclass(frozen=True, slots=True)
class UserDeleted:
    account_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class LocationUpserted:
    account_id: str
    location_id: str
    name: str
    address: Address
    coordinates: Coordinates | None


@dataclass(frozen=True, slots=True)
class LocationDeleted:
    account_id: str
    location_id: str


@dataclass(frozen=True, slots=True)
class IpGroupUpserted:
    account_id: str
    ip_group_id: str
    name: str
    location_id: str | None
    networks: tuple[IPNetwork, ...]
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IpGroupDeleted:
    account_id: str
    ip_group_id: str


DirectoryChange = (
    AccountUpserted
    | AccountDeleted
    | UserUpserted
    | UserLocationChanged
    | UserDeleted
    | LocationUpserted
    | LocationDeleted
    | IpGroupUpserted
    | IpGroupDeleted
)


@dataclass(frozen=True, slots=True)
class DirectoryEvent:
    kind: DirectoryEventKind
    event_id: str
    time: dt.datetime | None
    change: DirectoryChange

    @property
    def account_id(self) -> str:
        return self.change.account_id


# ---- parsing helpers ----------------------------------------------------------------

_MIN_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_MAX_TIME = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def parse_time(text: str | None, *, required: bool) -> dt.datetime | None:
    if text is None:
        if required:
            raise ValueError("time is required")
        return None
    if len(text) > 64:
        raise ValueError("time is too long")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time {text!r} is not RFC 3339") from None
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"time {text!r} is out of range") from None
    if not _MIN_TIME <= value < _MAX_TIME:
        raise ValueError(f"time {text!r} is out of range")
    return value


def _msg(exc: Exception) -> str:
    return str(exc)[:300]


# ---- decoders -----------------------------------------------------------------------

_envelope_decoder = msgspec.json.Decoder(_Envelope)
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


def _envelope(value: bytes | None, max_bytes: int) -> _Envelope | Invalid:
    if value is None:
        return Invalid(InvalidReason.NOT_CLOUDEVENT, "message has no value")
    if len(value) > max_bytes:
        return Invalid(InvalidReason.OVERSIZED, f"{len(value)} bytes > limit {max_bytes}")
    try:
        # msgspec decodes strings lazily (raw data is decoded later, unknown fields
        # never), so bad UTF-8 would slip through or blow up downstream: check it all.
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Invalid(InvalidReason.INVALID_JSON, f"not UTF-8: {_msg(exc)}")
    try:
        env = _envelope_decoder.decode(value)
    except msgspec.ValidationError as exc:
        return Invalid(InvalidReason.NOT_CLOUDEVENT, _msg(exc))
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        return Invalid(InvalidReason.INVALID_JSON, _msg(exc))
    if env.specversion != "1.0":
        return Invalid(InvalidReason.NOT_CLOUDEVENT, f"specversion {env.specversion[:20]!r}")
    if env.datacontenttype is not None and not env.datacontenttype.startswith("application/json"):
        return Invalid(InvalidReason.NOT_CLOUDEVENT, "datacontenttype is not application/json")
    return env


def _data(env: _Envelope, schema: type[msgspec.Struct]) -> Any:
    try:
        return _decoders[schema].decode(env.data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        return Invalid(InvalidReason.INVALID_DATA, _msg(exc))


def decode_session_event(
    value: bytes | None, max_bytes: int, not_after: dt.datetime | None = None
) -> SessionEvent | Invalid:
    """``not_after``: the latest acceptable event time (now plus the allowed clock skew).

    A session event stamped in the future would anchor a schedule hours away and make
    every correctly stamped later event look stale, freezing the session's IP.
    """
    env = _envelope(value, max_bytes)
    if isinstance(env, Invalid):
        return env
    schema = _SESSION_DATA.get(env.type)
    if schema is None:
        return Invalid(InvalidReason.UNKNOWN_TYPE, f"type {env.type[:100]!r}")
    data = _data(env, schema)
    if isinstance(data, Invalid):
        return data
    try:
        when = parse_time(env.time, required=True)
    except ValueError as exc:
        return Invalid(InvalidReason.INVALID_TIME, _msg(exc))
    assert when is not None  # noqa: S101  required=True
    if not_after is not None and when > not_after:
        ahead = (when - not_after).total_seconds()
        return Invalid(
            InvalidReason.INVALID_TIME,
            f"time {env.time!r} is {ahead:.0f} s beyond the allowed skew",
        )
    ip = None
    if isinstance(data, _SessionIpData):
        try:
            ip = parse_ip(data.ip)
        except BadIp as exc:
            return Invalid(InvalidReason.INVALID_IP, _msg(exc))
    return SessionEvent(
        kind=SessionEventKind(env.type),
        event_id=env.id,
        time=when,
        account_id=data.account_id,
        user_id=data.user_id,
        session_id=data.session_id,
        ip=ip,
        alert_id=data.alert_id if isinstance(data, _DismissData) else None,
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
                data.account_id, data.user_id, data.e911_location_id, data.changed_via
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
            networks: list[IPNetwork] = []
            for i, item in enumerate(data.addresses):
                try:
                    networks.extend(parse_address_item(item))
                except BadIp as exc:
                    return Invalid(InvalidReason.INVALID_IP, f"addresses[{i}]: {_msg(exc)}")
            return IpGroupUpserted(
                data.account_id,
                data.ip_group_id,
                data.name,
                data.location_id,
                tuple(dict.fromkeys(networks)),
                tuple(data.addresses),
            )
        case _IpGroupKey():
            return IpGroupDeleted(data.account_id, data.ip_group_id)
    raise AssertionError(f"unhandled directory schema {type(data).__name__}")


def decode_directory_event(value: bytes | None, max_bytes: int) -> DirectoryEvent | Invalid:
    env = _envelope(value, max_bytes)
    if isinstance(env, Invalid):
        return env
    schema = _DIRECTORY_DATA.get(env.type)
    if schema is None:
        return Invalid(InvalidReason.UNKNOWN_TYPE, f"type {env.type[:100]!r}")
    data = _data(env, schema)
    if isinstance(data, Invalid):
        return data
    try:
        when = parse_time(env.time, required=False)
    except ValueError as exc:
        return Invalid(InvalidReason.INVALID_TIME, _msg(exc))
    change = _directory_change(data)
    if isinstance(change, Invalid):
        return change
    return DirectoryEvent(DirectoryEventKind(env.type), env.id, when, change)


# The upsert data schemas and their conversion to changes, shared with the directory
# file import so that a file can never be looser (or stricter) than an event.
AccountUpsertedData = _AccountUpserted
UserUpsertedData = _UserUpserted
LocationUpsertedData = _LocationUpserted
IpGroupUpsertedData = _IpGroupUpserted
directory_change = _directory_change
