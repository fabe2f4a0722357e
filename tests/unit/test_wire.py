"""Inbound event contracts (docs/spec.md#event-contracts, #session-events-topic,
#directory-events-topic, #dead-letters): decoding and invalid reasons."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e911d.consumers.wire import decode_directory_event, decode_session_event
from e911d.daemon.core.events import (
    AccountDeleted,
    AccountUpserted,
    Address,
    Coordinates,
    DirectoryEvent,
    DirectoryEventKind,
    Invalid,
    InvalidReason,
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

MAX = 65_536
TIME = "2026-11-26T09:00:00Z"
WHEN = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
_MISSING = object()


def envelope(type_: str, data: Any, time: Any = TIME, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "urn:test",
        "type": type_,
        "datacontenttype": "application/json",
        "data": data,
    }
    if time is not _MISSING:
        body["time"] = time
    body.update(extra)
    return body


def encode(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")


def session(type_: str, data: dict[str, Any], **kw: Any) -> SessionEvent | Invalid:
    return decode_session_event(encode(envelope(type_, data, **kw)), MAX)


def directory(type_: str, data: dict[str, Any], **kw: Any) -> DirectoryEvent | Invalid:
    return decode_directory_event(encode(envelope(type_, data, **kw)), MAX)


SESSION = {"account_id": "acme", "user_id": "alice", "session_id": "s-1"}
LOGIN = {**SESSION, "ip": "198.51.100.23"}
ADDRESS = {
    "street": "1 Main St",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62701",
    "country": "US",
}


def reason(result: object) -> InvalidReason:
    assert isinstance(result, Invalid), result
    assert result.detail  # the dead letter says why
    return result.reason


# ---- valid session events -----------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "kind"),
    [
        ("e911.session.login", SessionEventKind.LOGIN),
        ("e911.session.ip_changed", SessionEventKind.IP_CHANGED),
    ],
)
def test_session_events_with_ip(type_: str, kind: SessionEventKind) -> None:
    ev = session(type_, {**LOGIN, "extra_field": [1, 2]}, traceparent="00-abc", extension=1)
    assert ev == SessionEvent(
        kind=kind,
        event_id="evt-1",
        time=WHEN,
        account_id="acme",
        user_id="alice",
        session_id="s-1",
        ip=ipaddress.IPv4Address("198.51.100.23"),
        alert_id=None,
    )


def test_logout() -> None:
    ev = session("e911.session.logout", {**SESSION, "ip": "ignored", "why": "bye"})
    assert ev == SessionEvent(SessionEventKind.LOGOUT, "evt-1", WHEN, "acme", "alice", "s-1")


def test_alert_dismissed() -> None:
    ev = session("e911.alert.dismissed", {**SESSION, "alert_id": "al-9"})
    assert isinstance(ev, SessionEvent)
    assert ev.kind is SessionEventKind.ALERT_DISMISSED
    assert ev.alert_id == "al-9"
    assert ev.ip is None


def test_session_event_time_is_converted_to_utc() -> None:
    ev = session("e911.session.login", LOGIN, time="2026-11-26T10:00:00+01:00")
    assert isinstance(ev, SessionEvent)
    assert ev.time == WHEN
    assert ev.time.utcoffset() == dt.timedelta(0)


def test_missing_datacontenttype_is_accepted() -> None:
    body = envelope("e911.session.login", LOGIN)
    del body["datacontenttype"]
    assert isinstance(decode_session_event(encode(body), MAX), SessionEvent)
    body["datacontenttype"] = "application/json; charset=utf-8"
    assert isinstance(decode_session_event(encode(body), MAX), SessionEvent)


def test_ipv4_mapped_ipv6_session_ip_is_ipv4() -> None:
    ev = session("e911.session.login", {**LOGIN, "ip": "::ffff:192.0.2.1"})
    assert isinstance(ev, SessionEvent)
    assert ev.ip == ipaddress.IPv4Address("192.0.2.1")
    assert isinstance(ev.ip, ipaddress.IPv4Address)


def test_ipv6_session_ip() -> None:
    ev = session("e911.session.login", {**LOGIN, "ip": "2001:db8::1"})
    assert isinstance(ev, SessionEvent)
    assert ev.ip == ipaddress.IPv6Address("2001:db8::1")


# ---- valid directory events ---------------------------------------------------------

DIRECTORY_CASES: list[tuple[str, dict[str, Any], object]] = [
    (
        "e911.account.upserted",
        {"account_id": "acme", "e911_recommendations": True},
        AccountUpserted("acme", True),
    ),
    ("e911.account.deleted", {"account_id": "acme"}, AccountDeleted("acme")),
    (
        "e911.user.upserted",
        {
            "account_id": "acme",
            "user_id": "alice",
            "e911_recommendations": False,
            "e911_location_id": "hq",
        },
        UserUpserted("acme", "alice", False, "hq"),
    ),
    (
        "e911.user.location_changed",
        {
            "account_id": "acme",
            "user_id": "alice",
            "e911_location_id": None,
            "changed_via": "app",
        },
        UserLocationChanged("acme", "alice", None, "app"),
    ),
    (
        "e911.user.deleted",
        {"account_id": "acme", "user_id": "alice"},
        UserDeleted("acme", "alice"),
    ),
    (
        "e911.location.upserted",
        {
            "account_id": "acme",
            "location_id": "hq",
            "name": "Headquarters",
            "address": {**ADDRESS, "floor": "3", "elevation": 3},
            "coordinates": {"lat": 39.8, "lon": -89.6, "alt": 5},
        },
        LocationUpserted(
            "acme",
            "hq",
            "Headquarters",
            Address("1 Main St", "Springfield", "US", "IL", "62701", floor="3"),
            Coordinates(39.8, -89.6),
        ),
    ),
    (
        "e911.location.deleted",
        {"account_id": "acme", "location_id": "hq"},
        LocationDeleted("acme", "hq"),
    ),
    (
        "e911.ip_group.upserted",
        {
            "account_id": "acme",
            "ip_group_id": "g1",
            "name": "HQ LAN",
            "location_id": "hq",
            "addresses": ["203.0.113.0/24", "2001:db8::/48", "198.51.100.7"],
        },
        IpGroupUpserted(
            "acme",
            "g1",
            "HQ LAN",
            "hq",
            (
                ipaddress.ip_network("203.0.113.0/24"),
                ipaddress.ip_network("2001:db8::/48"),
                ipaddress.ip_network("198.51.100.7/32"),
            ),
            ("203.0.113.0/24", "2001:db8::/48", "198.51.100.7"),
        ),
    ),
    (
        "e911.ip_group.deleted",
        {"account_id": "acme", "ip_group_id": "g1"},
        IpGroupDeleted("acme", "g1"),
    ),
]


@pytest.mark.parametrize(("type_", "data", "change"), DIRECTORY_CASES, ids=lambda x: str(x)[:30])
def test_directory_events_decode(type_: str, data: dict[str, Any], change: object) -> None:
    ev = directory(type_, {**data, "future_field": {"x": 1}}, newattr="ignored")
    assert isinstance(ev, DirectoryEvent), ev
    assert ev.kind is DirectoryEventKind(type_)
    assert ev.event_id == "evt-1"
    assert ev.time == WHEN
    assert ev.change == change
    assert ev.account_id == "acme"


def test_all_directory_types_are_covered() -> None:
    assert {t for t, _, _ in DIRECTORY_CASES} == {k.value for k in DirectoryEventKind}


def test_directory_event_time_is_optional() -> None:
    ev = directory("e911.account.deleted", {"account_id": "acme"}, time=_MISSING)
    assert isinstance(ev, DirectoryEvent)
    assert ev.time is None
    ev = directory("e911.account.deleted", {"account_id": "acme"}, time=None)
    assert isinstance(ev, DirectoryEvent)
    assert ev.time is None


def test_directory_event_with_bad_time_is_invalid_time() -> None:
    ev = directory("e911.account.deleted", {"account_id": "acme"}, time="yesterday")
    assert reason(ev) is InvalidReason.INVALID_TIME


def test_user_upserted_location_is_optional_and_location_coordinates_are_optional() -> None:
    ev = directory(
        "e911.user.upserted", {"account_id": "a", "user_id": "u", "e911_recommendations": True}
    )
    assert isinstance(ev, DirectoryEvent)
    assert ev.change == UserUpserted("a", "u", True, None)
    ev = directory(
        "e911.location.upserted",
        {
            "account_id": "a",
            "location_id": "l",
            "name": "L",
            "address": {"street": "s", "city": "c", "country": "US"},
        },
    )
    assert isinstance(ev, DirectoryEvent)
    assert isinstance(ev.change, LocationUpserted)
    assert ev.change.coordinates is None
    assert ev.change.address.region == ""


def test_unbound_ip_group_and_range_become_covering_cidrs() -> None:
    ev = directory(
        "e911.ip_group.upserted",
        {
            "account_id": "a",
            "ip_group_id": "g",
            "name": "range",
            "location_id": None,
            "addresses": ["192.0.2.10-192.0.2.20"],
        },
    )
    assert isinstance(ev, DirectoryEvent)
    assert isinstance(ev.change, IpGroupUpserted)
    assert ev.change.location_id is None
    covered = {int(a) for n in ev.change.networks for a in n}
    assert covered == set(range(int(ipaddress.IPv4Address("192.0.2.10")), 0xC0000215))


def test_duplicate_addresses_give_unique_networks() -> None:
    ev = directory(
        "e911.ip_group.upserted",
        {
            "account_id": "a",
            "ip_group_id": "g",
            "name": "dup",
            "addresses": ["10.0.0.0/24", "10.0.0.0/24", "10.0.0.1", "10.0.0.1/32"],
        },
    )
    assert isinstance(ev, DirectoryEvent)
    assert isinstance(ev.change, IpGroupUpserted)
    assert ev.change.networks == (
        ipaddress.ip_network("10.0.0.0/24"),
        ipaddress.ip_network("10.0.0.1/32"),
    )


# ---- invalid: envelope ----------------------------------------------------------------


@pytest.mark.parametrize("decode", [decode_session_event, decode_directory_event])
def test_oversized(decode: Any) -> None:
    body = encode(envelope("e911.session.logout", {**SESSION, "pad": "x" * 500}))
    assert reason(decode(body, len(body) - 1)) is InvalidReason.OVERSIZED
    # Exactly at the limit is not oversized (the directory decoder then refuses the type).
    at_limit = decode(body, len(body))
    assert not isinstance(at_limit, Invalid) or at_limit.reason is not InvalidReason.OVERSIZED
    assert isinstance(decode_session_event(body, len(body)), SessionEvent)


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"", b"not json", b'{"a": }'])
@pytest.mark.parametrize("decode", [decode_session_event, decode_directory_event])
def test_invalid_json(decode: Any, raw: bytes) -> None:
    assert reason(decode(raw, MAX)) is InvalidReason.INVALID_JSON


def _without(key: str) -> dict[str, Any]:
    body = envelope("e911.session.login", LOGIN)
    del body[key]
    return body


@pytest.mark.parametrize(
    "body",
    [
        [envelope("e911.session.login", LOGIN)],
        "a string",
        42,
        None,
        _without("id"),
        _without("specversion"),
        _without("type"),
        _without("data"),
        _without("source"),
        envelope("e911.session.login", LOGIN, specversion="0.3"),
        envelope("e911.session.login", LOGIN, datacontenttype="text/plain"),
        envelope("e911.session.login", LOGIN, id=""),
        envelope("e911.session.login", LOGIN, id=7),
        envelope("e911.session.login", LOGIN, time=1_700_000_000),
    ],
    ids=lambda b: json.dumps(b)[:40],
)
def test_not_cloudevent(body: Any) -> None:
    assert reason(decode_session_event(encode(body), MAX)) is InvalidReason.NOT_CLOUDEVENT
    assert reason(decode_directory_event(encode(body), MAX)) is InvalidReason.NOT_CLOUDEVENT


def test_no_value_is_not_cloudevent() -> None:
    assert reason(decode_session_event(None, MAX)) is InvalidReason.NOT_CLOUDEVENT
    assert reason(decode_directory_event(None, MAX)) is InvalidReason.NOT_CLOUDEVENT


def test_unknown_type() -> None:
    assert reason(session("e911.session.teleported", LOGIN)) is InvalidReason.UNKNOWN_TYPE
    # Each topic accepts only its own types.
    assert reason(session("e911.account.deleted", {"account_id": "a"})) is (
        InvalidReason.UNKNOWN_TYPE
    )
    assert reason(directory("e911.session.login", LOGIN)) is InvalidReason.UNKNOWN_TYPE


# ---- invalid: data -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("e911.session.login", {"account_id": "a", "user_id": "u", "ip": "1.2.3.4"}),
        ("e911.session.login", {"account_id": "a", "user_id": "u", "session_id": "s"}),
        ("e911.alert.dismissed", SESSION),
        ("e911.session.login", {**LOGIN, "account_id": 1}),
        ("e911.session.login", {**LOGIN, "ip": 16909060}),
        ("e911.session.login", {**LOGIN, "user_id": None}),
        ("e911.session.login", {**LOGIN, "session_id": ""}),
        ("e911.session.login", {**LOGIN, "session_id": "s\n1"}),
        ("e911.session.login", {**LOGIN, "user_id": "u\x00"}),
        ("e911.session.login", {**LOGIN, "user_id": "u\x7f"}),
        ("e911.session.login", {**LOGIN, "session_id": "s" * 257}),
        ("e911.session.logout", {**SESSION, "account_id": ["a"]}),
    ],
    ids=lambda x: str(x)[:50],
)
def test_invalid_session_data(type_: str, data: dict[str, Any]) -> None:
    assert reason(session(type_, data)) is InvalidReason.INVALID_DATA


def test_id_of_256_characters_is_fine() -> None:
    ev = session("e911.session.login", {**LOGIN, "session_id": "s" * 256})
    assert isinstance(ev, SessionEvent)
    assert ev.session_id == "s" * 256


@pytest.mark.parametrize("data", ["a string", [1, 2], None, 5])
def test_data_that_is_not_an_object(data: Any) -> None:
    assert reason(session("e911.session.login", data)) is InvalidReason.INVALID_DATA
    assert reason(directory("e911.account.deleted", data)) is InvalidReason.INVALID_DATA


LOCATION = {"account_id": "a", "location_id": "l", "name": "L", "address": ADDRESS}


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("e911.account.upserted", {"account_id": "a"}),
        ("e911.account.upserted", {"account_id": "a", "e911_recommendations": "yes"}),
        ("e911.account.upserted", {"account_id": "a", "e911_recommendations": 1}),
        ("e911.account.deleted", {"account_id": ""}),
        ("e911.user.upserted", {"account_id": "a", "user_id": "u", "e911_recommendations": "no"}),
        (
            "e911.user.location_changed",
            {"account_id": "a", "user_id": "u", "e911_location_id": "l", "changed_via": "phone"},
        ),
        (
            "e911.user.location_changed",
            {"account_id": "a", "user_id": "u", "e911_location_id": "l"},
        ),
        ("e911.user.deleted", {"account_id": "a"}),
        ("e911.location.upserted", {**LOCATION, "coordinates": {"lat": 91, "lon": 0}}),
        ("e911.location.upserted", {**LOCATION, "coordinates": {"lat": 0, "lon": -180.5}}),
        ("e911.location.upserted", {**LOCATION, "coordinates": {"lat": 0}}),
        ("e911.location.upserted", {**LOCATION, "name": ""}),
        ("e911.location.upserted", {**LOCATION, "address": "1 Main St"}),
        ("e911.location.upserted", {**LOCATION, "address": {"street": "s"}}),
        ("e911.location.deleted", {"account_id": "a", "location_id": "l\n"}),
        ("e911.ip_group.upserted", {"account_id": "a", "ip_group_id": "g", "name": "n"}),
        (
            "e911.ip_group.upserted",
            {"account_id": "a", "ip_group_id": "g", "name": "n", "addresses": "10.0.0.0/8"},
        ),
        ("e911.ip_group.deleted", {"account_id": "a", "ip_group_id": 3}),
    ],
    ids=lambda x: str(x)[:50],
)
def test_invalid_directory_data(type_: str, data: dict[str, Any]) -> None:
    assert reason(directory(type_, data)) is InvalidReason.INVALID_DATA


# ---- invalid: IP ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip", ["010.0.0.1", "fe80::1%eth0", "1.2.3", "", " 1.2.3.4", "1.2.3.4/32", "999.1.1.1"]
)
@pytest.mark.parametrize("type_", ["e911.session.login", "e911.session.ip_changed"])
def test_invalid_session_ip(type_: str, ip: str) -> None:
    assert reason(session(type_, {**LOGIN, "ip": ip})) is InvalidReason.INVALID_IP


@pytest.mark.parametrize(
    "item",
    [
        "10.0.0.1/24",
        "10.0.0.9-10.0.0.1",
        "10.0.0.1-2001:db8::1",
        "10.0.0.0/33",
        "010.0.0.0/8",
        "fe80::1%eth0",
        "nonsense",
    ],
)
def test_invalid_ip_group_address(item: str) -> None:
    ev = directory(
        "e911.ip_group.upserted",
        {
            "account_id": "a",
            "ip_group_id": "g",
            "name": "n",
            "addresses": ["10.1.0.0/16", item],
        },
    )
    assert reason(ev) is InvalidReason.INVALID_IP
    assert isinstance(ev, Invalid)
    assert "addresses[1]" in ev.detail


# ---- invalid: time --------------------------------------------------------------------


@pytest.mark.parametrize(
    "time",
    [
        _MISSING,
        None,
        "2026-11-26T09:00:00",
        "yesterday",
        "",
        "1970-01-01T00:00:00Z",
        "2999-01-01T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "x" * 100,
    ],
    # The same ids in every process (pytest-xdist compares them): not the sentinel's
    # repr, which carries its address.
    ids=lambda time: "missing" if time is _MISSING else repr(time),
)
def test_invalid_session_time(time: Any) -> None:
    assert reason(session("e911.session.login", LOGIN, time=time)) is InvalidReason.INVALID_TIME


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_time_at_the_edge_of_the_calendar_is_invalid_not_a_crash(time: str) -> None:
    """A UTC conversion that leaves datetime's range must become an Invalid, not raise."""
    assert reason(session("e911.session.login", LOGIN, time=time)) is InvalidReason.INVALID_TIME
    deleted = directory("e911.account.deleted", {"account_id": "a"}, time=time)
    assert reason(deleted) is InvalidReason.INVALID_TIME


# ---- fuzz -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

ALL_TYPES = [k.value for k in SessionEventKind] + [k.value for k in DirectoryEventKind]
FIELD_NAMES = [
    "account_id",
    "user_id",
    "session_id",
    "ip",
    "alert_id",
    "e911_recommendations",
    "e911_location_id",
    "changed_via",
    "location_id",
    "name",
    "address",
    "coordinates",
    "ip_group_id",
    "addresses",
]
ip_like = st.one_of(
    st.ip_addresses().map(str),
    st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(v=4), st.integers(-1, 40)),
    st.builds(lambda a, b: f"{a}-{b}", st.ip_addresses(), st.ip_addresses()),
    st.text(alphabet="0123456789abcdef:.%/- ", max_size=40),
)
time_like = st.one_of(
    st.none(),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.text(alphabet="0123456789-:TZ+. ", max_size=40),
)
field_values = st.one_of(json_values, ip_like, st.lists(ip_like, max_size=5), time_like)
shaped_data = st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=10)
shaped_envelopes = st.fixed_dictionaries(
    {
        "specversion": st.sampled_from(["1.0", "1.0", "0.3", 1]),
        "id": st.text(max_size=5) | json_values,
        "source": st.just("urn:x") | json_values,
        "type": st.sampled_from(ALL_TYPES) | st.text(max_size=10),
        "data": shaped_data | json_values,
    },
    optional={
        "time": time_like | json_values,
        "datacontenttype": st.sampled_from(["application/json", "text/plain"]) | json_values,
        "extra": json_values,
    },
)

FUZZ_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _check(value: bytes | None, max_bytes: int = MAX) -> None:
    for decode, event_type in (
        (decode_session_event, SessionEvent),
        (decode_directory_event, DirectoryEvent),
    ):
        result = decode(value, max_bytes)
        assert isinstance(result, event_type | Invalid)
        if isinstance(result, Invalid):
            assert result.reason in set(InvalidReason)
            assert len(result.detail) <= 400


@FUZZ_SETTINGS
@given(st.binary(max_size=300), st.integers(0, 400))
def test_fuzz_random_bytes(value: bytes, max_bytes: int) -> None:
    _check(value, max_bytes)


@FUZZ_SETTINGS
@given(json_values)
def test_fuzz_random_json(value: Any) -> None:
    _check(json.dumps(value).encode())


@FUZZ_SETTINGS
@given(shaped_envelopes)
def test_fuzz_envelope_shaped(body: dict[str, Any]) -> None:
    _check(json.dumps(body).encode())


@FUZZ_SETTINGS
@given(st.sampled_from(ALL_TYPES), shaped_data, time_like)
def test_fuzz_known_type_random_data(type_: str, data: dict[str, Any], time: Any) -> None:
    base = {**SESSION, "account_id": "a"}
    _check(encode(envelope(type_, {**base, **data}, time=time)))


def test_session_event_from_the_future_is_invalid_time() -> None:
    """A clock far ahead would freeze the session (every later event looks stale)."""
    import datetime as dt
    import json

    from e911d.consumers.wire import decode_session_event
    from e911d.daemon.core.events import InvalidReason, SessionEvent

    when = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
    value = json.dumps(
        {
            "specversion": "1.0",
            "id": "e1",
            "source": "urn:t",
            "type": "e911.session.login",
            "time": when.isoformat(),
            "data": {"account_id": "a", "user_id": "u", "session_id": "s", "ip": "192.0.2.1"},
        }
    ).encode()
    later = decode_session_event(value, 65536, not_after=when - dt.timedelta(seconds=1))
    assert not isinstance(later, SessionEvent)
    assert later.reason is InvalidReason.INVALID_TIME
    assert isinstance(decode_session_event(value, 65536, not_after=when), SessionEvent)
