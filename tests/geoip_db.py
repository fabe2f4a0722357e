"""Small MaxMind DB files for the geolocation tests, written with ``mmdb-writer``.

No downloaded database: each test writes the few networks it needs, in the City
layout the daemon reads (``location.latitude``, ``location.longitude``,
``location.accuracy_radius`` in km).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdb_writer import MmdbF64, MmdbU16, MMDBWriter
from netaddr import IPSet

PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)
NEW_YORK = (40.7128, -74.0060)
TOKYO = (35.6762, 139.6503)

PARIS_NET = "198.51.100.0/24"  # accuracy radius 20 km
NEW_YORK_NET = "203.0.113.0/24"  # accuracy radius 5 km
TOKYO_NET6 = "2001:db8:7::/48"  # accuracy radius 100 km
NO_COORDS_NET = "192.0.2.0/25"  # a record with a city name but no location
ODD_NET = "192.0.2.128/25"  # a record whose location is not a map


def city(lat: float, lon: float, radius: int | None, name: str) -> dict[str, Any]:
    location: dict[str, Any] = {"latitude": MmdbF64(lat), "longitude": MmdbF64(lon)}
    if radius is not None:
        location["accuracy_radius"] = MmdbU16(radius)
    return {"city": {"names": {"en": name}}, "location": location}


CITY_RECORDS: Mapping[str, Any] = {
    PARIS_NET: city(*PARIS, 20, "Paris"),
    NEW_YORK_NET: city(*NEW_YORK, 5, "New York"),
    TOKYO_NET6: city(*TOKYO, 100, "Tokyo"),
    NO_COORDS_NET: {"city": {"names": {"en": "Nowhere"}}},
    ODD_NET: {"location": "somewhere"},
}


def write_mmdb(
    path: Path,
    records: Mapping[str, Any] = CITY_RECORDS,
    database_type: str = "GeoLite2-City",
    ip_version: int = 6,
) -> Path:
    """Write ``records`` (CIDR → record) to ``path``; IPv4 nets live in ::/96 (as MaxMind's)."""
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description="e911d test database",
    )
    for cidr, record in records.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path
