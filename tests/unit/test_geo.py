"""The optional geolocation check as pure rules (docs/spec.md#geolocation-check,
daemon/core/geo.py): which
sessions it may touch, the distance limit, and the ``nearest_locations`` order."""

from __future__ import annotations

import ipaddress

import pytest

from e911d.daemon.core.evaluation import AccountDirectory, evaluate
from e911d.daemon.core.geo import GeoCheck, GeoPoint, distance_km, geolocate
from e911d.daemon.core.ip import IPAddress
from e911d.daemon.core.model import (
    Account,
    IpGroup,
    Location,
    MatchedBy,
    Outcome,
    RecommendationKind,
    User,
    Verdict,
)
from tests.geoip_db import LONDON, NEW_YORK, PARIS, TOKYO

PARIS_OFFICE = Location("paris", "Paris office", PARIS)
LONDON_OFFICE = Location("london", "London office", LONDON)
NY_OFFICE = Location("ny", "New York office", NEW_YORK)
NOWHERE = Location("nowhere", "No coordinates")
VPN_IP = ipaddress.ip_address("192.0.2.10")
NY_IP = ipaddress.ip_address("203.0.113.9")


def fixed(point: GeoPoint | None) -> tuple[GeoCheck, list[IPAddress]]:
    """A check whose lookup always answers ``point`` and records what it was asked."""
    asked: list[IPAddress] = []

    def lookup(ip: IPAddress) -> GeoPoint | None:
        asked.append(ip)
        return point

    return GeoCheck(lookup, 50.0), asked


def directory(*groups: IpGroup) -> AccountDirectory:
    return AccountDirectory("acme", (PARIS_OFFICE, LONDON_OFFICE, NY_OFFICE, NOWHERE), groups)


def evaluate_for(location_id: str, ip: IPAddress, geo: GeoCheck, *groups: IpGroup) -> Verdict:
    return evaluate(
        directory(*groups),
        Account("acme", True),
        User("acme", "alice", True, location_id),
        ip,
        geo=geo,
    )


def test_distance_paris_london_is_about_344_km() -> None:
    assert distance_km(PARIS, LONDON) == pytest.approx(344, abs=2)


def test_distance_is_symmetric_and_zero_at_the_same_point() -> None:
    assert distance_km(PARIS, NEW_YORK) == pytest.approx(distance_km(NEW_YORK, PARIS))
    assert distance_km(TOKYO, TOKYO) == 0.0
    assert distance_km(PARIS, NEW_YORK) == pytest.approx(5837, abs=15)


def test_within_the_limit_stays_undetermined_with_the_reading_as_evidence() -> None:
    # 30 km east of Paris: beyond 50 km? no. The evidence says how far and the limit.
    geo, asked = fixed(GeoPoint(48.8566, 2.76, accuracy_km=20))
    verdict = geolocate(directory().locations.values(), PARIS_OFFICE, VPN_IP, geo)
    assert asked == [VPN_IP]
    assert verdict.outcome is Outcome.UNDETERMINED
    assert verdict.recommendation is None and verdict.fingerprint is None
    assert verdict.geo is not None
    assert verdict.geo.distance_km == pytest.approx(30, abs=1)
    assert verdict.geo.limit_km == 70.0
    assert verdict.geo.accuracy_km == 20


def test_the_accuracy_radius_widens_the_limit() -> None:
    # London is ~344 km from Paris: a 400 km accuracy radius keeps it undetermined.
    loose, _ = fixed(GeoPoint(*LONDON, accuracy_km=400))
    tight, _ = fixed(GeoPoint(*LONDON, accuracy_km=0))
    locations = directory().locations.values()
    assert geolocate(locations, PARIS_OFFICE, VPN_IP, loose).outcome is Outcome.UNDETERMINED
    assert geolocate(locations, PARIS_OFFICE, VPN_IP, tight).outcome is Outcome.MISMATCH


def test_beyond_the_limit_is_a_nearest_locations_mismatch_nearest_first() -> None:
    geo, _ = fixed(GeoPoint(*NEW_YORK, accuracy_km=5))
    verdict = evaluate_for("paris", NY_IP, geo)
    assert verdict.outcome is Outcome.MISMATCH
    rec = verdict.recommendation
    assert rec is not None
    assert rec.kind is RecommendationKind.NEAREST_LOCATIONS
    assert rec.matched_by is MatchedBy.GEOIP
    assert verdict.matched_by is MatchedBy.GEOIP
    # New York, then London (5570 km), then Paris (5837 km); no coordinates: left out.
    assert [loc.location_id for loc in rec.locations] == ["ny", "london", "paris"]
    assert verdict.assigned_location == PARIS_OFFICE
    assert verdict.fingerprint is not None
    assert verdict.geo is not None and verdict.geo.distance_km == pytest.approx(5837, abs=15)


def test_assigned_location_without_coordinates_is_undetermined_without_a_lookup() -> None:
    geo, asked = fixed(GeoPoint(*NEW_YORK))
    verdict = evaluate_for("nowhere", NY_IP, geo)
    assert verdict.outcome is Outcome.UNDETERMINED
    assert verdict.geo is None
    assert asked == []


def test_an_address_not_in_the_database_is_undetermined() -> None:
    geo, asked = fixed(None)
    verdict = evaluate_for("paris", NY_IP, geo)
    assert asked == [NY_IP]
    assert verdict.outcome is Outcome.UNDETERMINED and verdict.geo is None


def test_a_non_locating_win_never_geolocates() -> None:
    vpn = IpGroup(
        "vpn", "VPN egress", None, (ipaddress.ip_network("203.0.113.0/24"),), locating=False
    )
    geo, asked = fixed(GeoPoint(*TOKYO))
    verdict = evaluate_for("paris", NY_IP, geo, vpn)
    assert verdict.outcome is Outcome.UNDETERMINED
    assert verdict.matched_by is MatchedBy.IP
    assert verdict.geo is None
    assert asked == []


def test_a_locating_match_is_decided_by_the_network_not_by_the_database() -> None:
    ny_net = IpGroup("ny-net", "NY", "ny", (ipaddress.ip_network("203.0.113.0/24"),))
    geo, asked = fixed(GeoPoint(*TOKYO))
    verdict = evaluate_for("paris", NY_IP, geo, ny_net)
    assert verdict.outcome is Outcome.MISMATCH
    assert verdict.recommendation is not None
    assert verdict.recommendation.kind is RecommendationKind.IP_GROUP_MATCH
    assert asked == []


def test_an_assigned_location_with_its_own_network_is_not_geolocated() -> None:
    # The session is outside Paris's network: all_locations, as without a database.
    paris_net = IpGroup("paris-net", "Paris", "paris", (ipaddress.ip_network("198.51.100.0/24"),))
    geo, asked = fixed(GeoPoint(*NEW_YORK))
    verdict = evaluate_for("paris", NY_IP, geo, paris_net)
    assert verdict.recommendation is not None
    assert verdict.recommendation.kind is RecommendationKind.ALL_LOCATIONS
    assert asked == []


def test_without_a_check_undetermined_stays_undetermined() -> None:
    verdict = evaluate(
        directory(), Account("acme", True), User("acme", "alice", True, "paris"), NY_IP
    )
    assert verdict.outcome is Outcome.UNDETERMINED and verdict.geo is None
