"""The inbound events (docs/spec.md#session-events-topic, #directory-events-topic) as the rest of
e911d sees them: plain values.

How they are spelled on the wire and decoded is :mod:`consumers.wire`; everything
downstream of the decoder (the session fold, the directory projection, the file
import) works with these values only.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Annotated

import msgspec

from e911d.daemon.core.ip import IPAddress, IPNetwork
from e911d.daemon.core.network import NetworkSignals, SwitchRef

# The limits every id and name obeys, in events and directory files alike; here
# because Address carries names.
# Ids: non-empty, bounded, no control characters (they would make logs and keys lie).
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"\A[^\x00-\x1f\x7f]+\Z")]
Name = Annotated[str, msgspec.Meta(max_length=512, pattern=r"\A[^\x00-\x08\x0b-\x1f\x7f]*\Z")]
# Where inside a building (docs/spec.md#dispatchable-addresses): short, one line, no
# control characters at all; empty or null means not given.
AddressDetail = Annotated[
    str,
    msgspec.Meta(
        max_length=100,
        pattern=r"\A[^\x00-\x1f\x7f]*\Z",
        description="At most 100 characters, no control characters; empty or null: not given.",
    ),
]


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
    # One value inside the data refused: where it is and why, as values (``detail``
    # is worded from it), so the directory file validator never reads ``detail``.
    error: FieldError | None = None


# A dead-letter header and a log line carry at most this much of an error's text.
_MAX_DETAIL = 300


def exc_detail(exc: Exception) -> str:
    """An error's text, cut short: it lands in a dead-letter header and a log line."""
    return str(exc)[:_MAX_DETAIL]


@dataclass(frozen=True, slots=True)
class FieldError:
    """A value refused inside an event's data: the field, the item of it, and why.

    The event decoder words the dead-letter detail from it and the directory file
    validator puts :attr:`path` after the entity's own, so neither depends on the
    other's wording.
    """

    field: str  # the data's field: "addresses", "bssids", "switches", "network"
    index: int | None  # the item of that list; None when the field is not a list
    message: str  # what is wrong with the value, whole
    key: str | None = None  # the item's own field: "chassis_id", "port_id", "bssid"

    @property
    def path(self) -> str:
        """Within the data: ``bssids[2]``, ``switches[0].port_id``, ``network.bssid``."""
        at = self.field if self.index is None else f"{self.field}[{self.index}]"
        return at if self.key is None else f"{at}.{self.key}"

    def invalid(self, reason: InvalidReason) -> Invalid:
        return Invalid(reason, f"{self.path}: {self.message[:_MAX_DETAIL]}", self)


# ---- session events -----------------------------------------------------------------


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
    # login and ip_changed: what the client reported (None: nothing); it replaces the
    # session's previous signals, as the IP does.
    network: NetworkSignals | None = None


# ---- directory events ---------------------------------------------------------------


class Address(msgspec.Struct, forbid_unknown_fields=False, frozen=True):
    """A civic address, and what tells a place apart inside its building
    (docs/spec.md#dispatchable-addresses); :mod:`daemon.core.address` writes it on one line."""

    street: Name
    city: Name
    country: Name
    region: Name = ""
    postal_code: Name = ""
    building: AddressDetail | None = None
    floor: AddressDetail | None = None
    unit: AddressDetail | None = None


class Coordinates(msgspec.Struct, forbid_unknown_fields=False, frozen=True):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]


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
    # The session the app made the change from (docs/spec.md#networks-a-user-confirmed).
    session_id: str | None = None


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
    # Normalised (daemon.core.network): BSSIDs and patterns, switches and ports.
    bssids: tuple[str, ...] = ()
    switches: tuple[SwitchRef, ...] = ()
    locating: bool = True


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
