"""Dispatchable addresses (docs/spec.md#dispatchable-addresses) and the cut of a
recommendation's list (docs/spec.md#alerts-topic), as pure functions and typed values."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

import msgspec
import pytest

from e911d.consumers.wire import decode_directory_event
from e911d.daemon.commands.contract_examples import example_events
from e911d.daemon.core.address import address_doc, address_line, missing_civic_fields, place_key
from e911d.daemon.core.evaluation import AccountDirectory, evaluate
from e911d.daemon.core.events import Address, DirectoryEvent, Invalid, InvalidReason
from e911d.daemon.core.geo import GeoCheck, GeoPoint, geolocate
from e911d.daemon.core.listing import ListLimit, encoded_size, listing
from e911d.daemon.core.model import (
    Account,
    IpGroup,
    Location,
    MatchedBy,
    Outcome,
    Recommendation,
    RecommendationKind,
    User,
    Verdict,
    fingerprint_of,
)
from e911d.daemon.store.alerts import AlertStore, SessionRef, raised_alert
from tests.support import ce

FULL = {
    "street": "100 Main St",
    "building": "2",
    "floor": "3",
    "unit": "Suite 301",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62701",
    "country": "US",
}
LOGIN = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
T = LOGIN + dt.timedelta(minutes=10)
REF = SessionRef("s1", "acme", "u1", 0)


# ---- the one-line address ----------------------------------------------------------


def test_the_documented_order() -> None:
    assert address_line(FULL) == (
        "100 Main St, Building 2, Floor 3, Suite 301, Springfield, IL 62701, US"
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"building": None, "floor": None, "unit": None}, "100 Main St, Springfield, IL 62701, US"),
        ({"region": "", "building": ""}, "100 Main St, Floor 3, Suite 301, Springfield, 62701, US"),
        (
            {"postal_code": "", "floor": "Ground floor"},
            "100 Main St, Building 2, Ground floor, Suite 301, Springfield, IL, US",
        ),
        (
            {"building": "B", "floor": "LL", "unit": "2A"},
            "100 Main St, Building B, Floor LL, Unit 2A, Springfield, IL 62701, US",
        ),
        (
            {"building": "North Tower", "floor": "Penthouse", "unit": "301"},
            "100 Main St, North Tower, Penthouse, Unit 301, Springfield, IL 62701, US",
        ),
        # One line: tabs and newlines a name may hold, and edge spaces, are gone.
        (
            {"street": " 100\tMain\n St ", "unit": "  Suite   301 "},
            "100 Main St, Building 2, Floor 3, Suite 301, Springfield, IL 62701, US",
        ),
    ],
)
def test_fields_not_given_are_left_out_and_bare_details_get_their_label(
    changes: dict[str, Any], expected: str
) -> None:
    assert address_line({**FULL, **changes}) == expected


@pytest.mark.parametrize("stored", [None, "100 Main St", ["100 Main St"], 3, {}])
def test_a_stored_address_of_another_shape_gives_an_empty_line(stored: object) -> None:
    """Another system's SQL may write anything into locations.address: no crash."""
    assert address_line(stored) == ""


def test_values_that_are_not_strings_count_as_not_given() -> None:
    doc = {**FULL, "floor": 3, "building": ["x"], "unit": {"a": 1}, "region": None}
    assert address_line(doc) == "100 Main St, Springfield, 62701, US"


def test_an_address_without_details_is_stored_as_before_they_existed() -> None:
    plain = Address("1 Main St", "Springfield", "US", "IL", "62701")
    assert address_doc(plain) == {
        "street": "1 Main St",
        "city": "Springfield",
        "country": "US",
        "region": "IL",
        "postal_code": "62701",
    }
    empty = Address("1 Main St", "Springfield", "US", building="", floor=None, unit="4")
    assert address_doc(empty)["unit"] == "4"
    assert "building" not in address_doc(empty)
    assert "floor" not in address_doc(empty)


# ---- lint helpers ------------------------------------------------------------------------


def test_missing_civic_fields_include_a_street_without_a_number() -> None:
    assert missing_civic_fields(msgspec.convert(FULL, Address)) == []
    assert missing_civic_fields(Address("Main St", "Springfield", "US")) == [
        "street",
        "region",
        "postal_code",
    ]
    assert missing_civic_fields(Address("  ", "", "US", "IL", "1")) == ["street", "city"]


def test_the_same_place_ignores_case_and_spacing_but_not_the_unit() -> None:
    a = msgspec.convert(FULL, Address)
    b = msgspec.convert({**FULL, "street": "100  MAIN st", "unit": "suite 301"}, Address)
    c = msgspec.convert({**FULL, "unit": "Suite 302"}, Address)
    assert place_key(a) == place_key(b)
    assert place_key(a) != place_key(c)


# ---- building, floor and unit on the directory consumer path ----------------------------


def _location_event(address: object) -> DirectoryEvent | Invalid:
    data = {"account_id": "acme", "location_id": "hq", "name": "HQ", "address": address}
    return decode_directory_event(ce("e911.location.upserted", data), 65_536)


def test_building_floor_and_unit_are_read() -> None:
    event = _location_event(FULL)
    assert isinstance(event, DirectoryEvent)
    assert event.change.address == msgspec.convert(FULL, Address)  # type: ignore[union-attr]
    nulls = _location_event({**FULL, "building": None, "floor": None, "unit": None})
    assert isinstance(nulls, DirectoryEvent)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("floor", 3),  # a number must be sent as a string
        ("building", ["2"]),
        ("unit", {"suite": 301}),
        ("floor", True),
        ("unit", "x" * 101),  # oversized
        ("building", "2\n"),  # a control character: the line would lie
        ("unit", "Suite\x1b[2J301"),
        ("floor", "\x00"),
    ],
)
def test_malformed_details_refuse_the_event_naming_the_field(field: str, value: object) -> None:
    event = _location_event({**FULL, field: value})
    assert isinstance(event, Invalid)
    assert event.reason is InvalidReason.INVALID_DATA
    assert f"address.{field}" in event.detail


# ---- the cut -----------------------------------------------------------------------------


def _places(n: int, line: str = "1 Main St, Springfield, IL 62701, US") -> tuple[Location, ...]:
    return tuple(Location(f"loc-{i:05d}", f"Place {i:05d}", address_line=line) for i in range(n))


def test_twenty_thousand_locations_list_the_first_fifty_with_the_total() -> None:
    places = _places(20_000)
    cut = listing(places, ListLimit(50, 32_768))
    assert cut.locations == places[:50]
    assert cut.total == 20_000
    assert cut.truncated


def test_a_short_list_is_not_truncated() -> None:
    cut = listing(_places(3), ListLimit(50, 32_768))
    assert (len(cut.locations), cut.total, cut.truncated) == (3, 3, False)


def test_the_bytes_cut_too_and_one_location_is_always_listed() -> None:
    big = _places(50, line="x" * 5_000)
    cut = listing(big, ListLimit(50, 32_768))
    assert len(cut.locations) == 6  # 6 x ~5.1 kB fit in 32 kB, a 7th would not
    assert sum(encoded_size(loc) for loc in cut.locations) <= 32_768
    assert listing(big, ListLimit(50, 100)).locations == big[:1]


def test_the_size_counts_json_escapes() -> None:
    quoted = Location("a", '"' * 10, address_line="\\" * 10)
    assert encoded_size(quoted) == len(msgspec.json.encode(["a", '"' * 10, "\\" * 10])) - 4 + 48


def _all_locations(places: tuple[Location, ...], assigned: Location | None = None) -> Verdict:
    return Verdict(
        Outcome.MISMATCH,
        assigned_location=assigned,
        recommendation=Recommendation(RecommendationKind.ALL_LOCATIONS, places),
    )


def test_an_alert_of_twenty_thousand_locations_is_small_and_says_how_many() -> None:
    places = _places(20_000)
    alert = raised_alert(REF, "192.0.2.1", LOGIN, 1, _all_locations(places), T)
    event = AlertStore("e911.alerts", "urn:test", ListLimit(50, 32_768)).raised_event(alert)
    assert len(event.value) < 65_536
    rec = msgspec.json.decode(event.value)["data"]["recommendation"]
    assert [loc["location_id"] for loc in rec["locations"]] == [p.location_id for p in places[:50]]
    assert (rec["total"], rec["truncated"]) == (20_000, True)


# ---- what makes an alert the same ------------------------------------------------------


def test_display_fields_and_the_cut_never_change_an_alert_id() -> None:
    bare = _places(200, line="")
    shown = _places(200)
    ids = {
        raised_alert(REF, "192.0.2.1", LOGIN, 1, _all_locations(places), T).alert_id
        for places in (bare, shown)
    }
    assert len(ids) == 1
    alert = raised_alert(REF, "192.0.2.1", LOGIN, 1, _all_locations(shown), T)
    listed = {
        AlertStore("t", "s", ListLimit(n, 1 << 20)).raised_event(alert).value for n in (1, 50)
    }
    assert len(listed) == 2  # the cut changes what is listed, not the id


def test_the_fingerprint_still_covers_every_recommended_location() -> None:
    """A location beyond the cut is part of the mismatch: adding one is a new alert,
    as it always was for all_locations."""
    places = _places(100)
    more = (*places, Location("zzz", "Zebra"))
    assert _all_locations(places).fingerprint != _all_locations(more).fingerprint


def test_the_alert_id_of_the_example_is_the_one_published_before_address_lines() -> None:
    """The contract example's alert (docs/schemas/e911.alert.raised.json) had this id in
    contract 1.3.0, before its locations had addresses: an upgrade raises no open alert
    again."""
    raised = example_events()["e911.alert.raised"]
    assert raised["data"]["alert_id"] == "2ca91e0c-85c9-5a3f-86d3-a735f3ad7dbe"
    assert raised["data"]["assigned_location"]["address_line"] != ""
    verdict = Verdict(
        Outcome.MISMATCH,
        Location("hq", "Headquarters"),
        Recommendation(
            RecommendationKind.IP_GROUP_MATCH, (Location("home", "Home office"),), MatchedBy.IP
        ),
    )
    ref = SessionRef("s-9001", "acme", "u-42", 0)
    bare = raised_alert(ref, "198.51.100.23", LOGIN, 1, verdict, T)
    assert bare.alert_id == raised["data"]["alert_id"]


# ---- an account of 20,000 locations, checked often ------------------------------------


def test_the_snapshot_keeps_all_locations_sorted_and_their_fingerprint_key_ready() -> None:
    """Sorted and joined once per snapshot, and the same values as computed afresh."""
    places = _places(2_000)
    shuffled = places[1::2] + places[::2]
    office = IpGroup("g", "G", "loc-00042", (ipaddress.ip_network("10.0.0.0/24"),))
    directory = AccountDirectory("big", shuffled, (office,))
    assert directory.sorted_locations() == places
    assert directory.sorted_locations() is directory.sorted_locations()
    ids = [p.location_id for p in places]
    for assigned in (None, "loc-00042"):
        user = User("big", "u1", True, assigned)
        verdict = evaluate(directory, Account("big", True), user, ipaddress.ip_address("192.0.2.1"))
        assert verdict.recommendation is not None
        assert verdict.recommendation.kind is RecommendationKind.ALL_LOCATIONS
        assert verdict.fingerprint == fingerprint_of(assigned, ids)


def test_nearest_locations_list_the_nearest_ones() -> None:
    """An assigned office far away, 30 places on a line eastwards: the alert lists the
    five nearest to where the IP is, nearest first, and says how many there were."""
    here = GeoPoint(0.0, 0.0)
    places = tuple(
        Location(f"p{i:02d}", f"Place {29 - i:02d}", coordinates=(0.0, 0.1 * (i + 1)))
        for i in range(30)
    )
    assigned = Location("far", "Far office", coordinates=(60.0, 60.0))
    verdict = geolocate(
        (*reversed(places), assigned),
        assigned,
        ipaddress.ip_address("192.0.2.1"),
        GeoCheck(lambda _ip: here),
    )
    assert verdict.recommendation is not None
    assert verdict.recommendation.kind is RecommendationKind.NEAREST_LOCATIONS
    alert = raised_alert(REF, "192.0.2.1", LOGIN, 1, verdict, T)
    rec = alert.event_data(ListLimit(5, 32_768))["recommendation"]
    assert [loc["location_id"] for loc in rec["locations"]] == ["p00", "p01", "p02", "p03", "p04"]
    assert (rec["total"], rec["truncated"]) == (31, True)  # the far office is a place too
