"""The optional geolocation check (docs/spec.md#geolocation-check), as pure functions.

A GeoIP database answers "where is this address registered", within an accuracy
radius that is often tens of kilometres and, for a VPN or a mobile carrier, simply
wrong. So geolocation is only ever a last resort: it runs when no network signal
located the session and the user's assigned location has no network of its own
(``undetermined``), it never confirms a location (a near reading stays
``undetermined``), and it only alerts when the address is farther from the assigned
location than the configured distance *plus* the database's own accuracy radius.
The database reader itself is :mod:`daemon.runtime.geoip`; here it is any callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from e911d.daemon.core.ip import IPAddress
from e911d.daemon.core.model import (
    GeoEvidence,
    Location,
    MatchedBy,
    Outcome,
    Recommendation,
    RecommendationKind,
    SignalMatch,
    Verdict,
)

EARTH_RADIUS_KM = 6371.0088


class LookupResult(StrEnum):
    """What one database lookup gave; a metric label, so a closed set."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    NO_COORDINATES = "no_coordinates"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float
    # The database's accuracy radius for this address (0 when it gives none).
    accuracy_km: float = 0.0


@dataclass(frozen=True, slots=True)
class GeoCheck:
    """A lookup (None: the address is not in the database) and the distance allowed."""

    lookup: Callable[[IPAddress], GeoPoint | None]
    max_distance_km: float = 50.0


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance between two (lat, lon) points in degrees."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def geolocate(
    locations: Iterable[Location], assigned: Location, ip: IPAddress, geo: GeoCheck
) -> Verdict:
    """``undetermined`` unless the address is provably far from ``assigned``; then a
    ``nearest_locations`` mismatch listing the account's located places, nearest first."""
    undetermined = Verdict(Outcome.UNDETERMINED, assigned_location=assigned)
    if assigned.coordinates is None:
        return undetermined
    point = geo.lookup(ip)
    if point is None:
        return undetermined
    here = (point.lat, point.lon)
    away = distance_km(here, assigned.coordinates)
    limit = geo.max_distance_km + point.accuracy_km
    evidence = GeoEvidence(point.lat, point.lon, point.accuracy_km, away, limit)
    if away <= limit:
        return Verdict(Outcome.UNDETERMINED, assigned_location=assigned, geo=evidence)
    placed = [loc for loc in locations if loc.coordinates is not None]
    nearest = tuple(
        sorted(
            placed,
            key=lambda loc: (distance_km(here, loc.coordinates or here), loc.name, loc.location_id),
        )
    )
    match = SignalMatch(
        MatchedBy.GEOIP,
        frozenset(loc.location_id for loc in nearest),
        (),
        key=f"{point.lat:.4f},{point.lon:.4f}",
    )
    return Verdict(
        Outcome.MISMATCH,
        assigned_location=assigned,
        recommendation=Recommendation(
            RecommendationKind.NEAREST_LOCATIONS, nearest, MatchedBy.GEOIP
        ),
        match=match,
        geo=evidence,
    )
