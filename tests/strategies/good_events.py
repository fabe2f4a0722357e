"""Good events before encoding (:class:`Built`): a body and the event it must decode to.

Bodies carry hostile but legal content: unknown extra attributes and data fields with
arbitrary JSON (docs/spec.md#event-contracts: ignored), unicode and maximum-length ids,
edge-but-valid IPs,
offsets and fractions in times, attributes in any order. The field tables say what
each type's data holds; the faults use them to know what there is to break.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st

from e911d.daemon.core.events import (
    AccountDeleted,
    AccountUpserted,
    Address,
    Coordinates,
    DirectoryChange,
    DirectoryEvent,
    DirectoryEventKind,
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
from e911d.daemon.core.network import NetworkSignals
from tests.strategies.ips import IPAddress, IPNetwork, invalid_ips, valid_address_items, valid_ips
from tests.strategies.tags import DIRECTORY, SESSION
from tests.strategies.text import (
    _ANY_CHARS,
    _ID_CHARS,
    _long_text,
    free_ids,
    json_values,
    moderately_nested,
    names,
    nonempty_names,
    unique_ids,
)
from tests.strategies.times import any_valid_times, good_session_times

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
_CONTENT_TYPES = st.sampled_from(  # any JSON media type, or none, means JSON data
    [
        ABSENT,
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.acme.event+json",
    ]
)


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
        "session_id": "id?",
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
    (DirectoryEventKind.USER_LOCATION_CHANGED, "session_id"),
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
# Optional, null or empty meaning not given (docs/spec.md#dispatchable-addresses).
ADDRESS_DETAILS: Final = ("building", "floor", "unit")
_DETAILS = st.one_of(
    st.none(),
    st.just(""),
    st.text(_ID_CHARS, max_size=10),
    st.sampled_from(["3", "Suite 301", "B", "x" * 100, "\u202eevil-rtl"]),
)


@dataclass(frozen=True, slots=True)
class Built:
    """A good event before encoding: its body, the event it must decode to, its key."""

    topic: str
    body: dict[str, Any]
    event: SessionEvent | DirectoryEvent
    key: str
    label: str


# (wire spelling, normalised): every common MAC spelling of one BSSID, and switch ids
# that normalise (a MAC chassis id like a BSSID, any other one case-insensitively).
_BSSIDS: Final = st.sampled_from(
    [
        ("F0-6E-0B-C2-03-21", "f06e0bc20321"),
        ("f06e.0bc2.0321", "f06e0bc20321"),
        ("f0:6e:b:c2:3:21", "f06e0bc20321"),
        ("A1B2C3D4E5F6", "a1b2c3d4e5f6"),
    ]
)
_CHASSIS: Final = st.sampled_from(
    [("00:1A:2B:3C:4D:5E", "001a2b3c4d5e"), (" Core-SW1 ", "core-sw1"), ("sw" * 127, "sw" * 127)]
)
_PORTS: Final = st.sampled_from([("Gi1/0/12", "gi1/0/12"), (" ETH 7 ", "eth 7"), ("1", "1")])


@st.composite
def _network(draw: st.DrawFn) -> tuple[dict[str, Any], NetworkSignals | None]:
    """A good ``network`` of login/ip_changed (docs/spec.md#network-signals), and what it decodes
    to."""
    wire: dict[str, Any] = {}
    bssid = chassis = port = None
    if draw(st.booleans()):
        wire["bssid"], bssid = draw(_BSSIDS)
    if draw(st.booleans()):
        wire["switch"] = {}
        wire["switch"]["chassis_id"], chassis = draw(_CHASSIS)
        if draw(st.booleans()):
            wire["switch"]["port_id"], port = draw(_PORTS)
    wire.update(draw(_extra_fields(frozenset({"bssid", "switch"}), max_size=1)))
    signals = None if bssid is None and chassis is None else NetworkSignals(bssid, chassis, port)
    return wire, signals


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
    network: NetworkSignals | None = None
    label = kind.value
    if kind in (SessionEventKind.LOGIN, SessionEventKind.IP_CHANGED):
        data["ip"], ip = draw(valid_ips())
        form = "ipv4_mapped" if ip.version == 4 and ":" in data["ip"] else f"ipv{ip.version}"
        label += f"+{form}"
        if draw(st.booleans()):
            data["network"], network = draw(_network())
            label += "+network"
    elif draw(st.booleans()):
        # Not a field of logout/dismissed: a bad IP there is an ignored unknown field.
        data["ip"] = draw(invalid_ips())
        label += "+ignored_bad_ip"
    if kind is SessionEventKind.ALERT_DISMISSED:
        alert_id = draw(free_ids)
        data["alert_id"] = alert_id
    data.update(draw(_extra_fields(frozenset(SESSION_FIELDS[kind]) | {"ip", "network"})))
    data = {k: data[k] for k in draw(st.permutations(list(data)))}
    time_text, when = draw(good_session_times())
    body = draw(envelope(kind.value, data, time_text))
    event = SessionEvent(
        kind, body["id"], when, account, user, session_id, ip, alert_id, network=network
    )
    return Built(SESSION, body, event, user, label)


@st.composite
def _address(draw: st.DrawFn) -> tuple[dict[str, Any], Address]:
    values = {f: draw(names) for f in ADDRESS_FIELDS}
    shown = {f: values[f] for f in ADDRESS_FIELDS if f in ADDRESS_REQUIRED or draw(st.booleans())}
    details = {f: draw(_DETAILS) for f in ADDRESS_DETAILS if draw(st.booleans())}
    shown.update(details)
    shown.update(draw(_extra_fields(frozenset(ADDRESS_FIELDS + ADDRESS_DETAILS), max_size=2)))
    return shown, Address(**{f: shown.get(f, "") for f in ADDRESS_FIELDS}, **details)


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
        # Optional and nullable: left out, null, or the session the app changed it from.
        session = draw(st.one_of(st.none(), free_ids))
        if session is not None or draw(st.booleans()):
            data["session_id"] = session
        return data, UserLocationChanged(account, user, location, via, session)
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
