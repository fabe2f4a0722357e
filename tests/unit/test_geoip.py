"""The GeoIP database reader (daemon/runtime/geoip.py) on databases the tests write themselves:
what a look-up returns, and which files stop the start with a message naming
``E911_GEOIP__DATABASE``."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from e911d.config import ConfigError, GeoIpSettings, load_settings
from e911d.daemon.core.geo import GeoPoint
from e911d.daemon.runtime.geoip import GeoIpError, GeoIpReader, open_geoip, open_reader, point_of
from e911d.daemon.services.metrics import Metrics
from tests.geoip_db import NEW_YORK, PARIS, TOKYO, city, write_mmdb


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.fixture
def city_db(tmp_path: Path) -> Path:
    return write_mmdb(tmp_path / "city.mmdb")


@pytest.fixture
def reader(city_db: Path) -> Iterator[GeoIpReader]:
    r = GeoIpReader(open_reader(city_db), Metrics().geoip_lookups)
    yield r
    r.close()


def test_an_address_in_the_database_has_its_coordinates_and_accuracy_radius(
    reader: GeoIpReader,
) -> None:
    assert reader.lookup(ip("198.51.100.7")) == GeoPoint(*PARIS, accuracy_km=20)
    assert reader.lookup(ip("203.0.113.200")) == GeoPoint(*NEW_YORK, accuracy_km=5)


def test_ipv6_and_ipv4_mapped_addresses(reader: GeoIpReader) -> None:
    assert reader.lookup(ip("2001:db8:7::1")) == GeoPoint(*TOKYO, accuracy_km=100)
    assert reader.lookup(ip("::ffff:198.51.100.7")) == GeoPoint(*PARIS, accuracy_km=20)


def test_an_address_not_in_the_database_is_none(reader: GeoIpReader) -> None:
    assert reader.lookup(ip("10.1.2.3")) is None
    assert reader.lookup(ip("2001:db8:8::1")) is None


def test_records_without_usable_coordinates_are_none(reader: GeoIpReader) -> None:
    assert reader.lookup(ip("192.0.2.1")) is None  # a city name, no location
    assert reader.lookup(ip("192.0.2.200")) is None  # location is a string


@pytest.mark.parametrize(
    "record",
    [
        None,
        "Paris",
        [1, 2],
        {"location": None},
        {"location": {"latitude": 48.8}},
        {"location": {"latitude": "48.8", "longitude": "2.3"}},
        {"location": {"latitude": True, "longitude": 2.3}},
        {"location": {"latitude": float("nan"), "longitude": 2.3}},
        {"location": {"latitude": 91.0, "longitude": 2.3}},
        {"location": {"latitude": 48.8, "longitude": -181}},
    ],
)
def test_odd_records_never_raise(record: object) -> None:
    assert point_of(record) is None


def test_a_missing_or_odd_accuracy_radius_counts_as_zero() -> None:
    assert point_of({"location": {"latitude": 1, "longitude": 2}}) == GeoPoint(1.0, 2.0, 0.0)
    odd = {"location": {"latitude": 1, "longitude": 2, "accuracy_radius": "far"}}
    assert point_of(odd) == GeoPoint(1.0, 2.0, 0.0)
    negative = {"location": {"latitude": 1, "longitude": 2, "accuracy_radius": -5}}
    assert point_of(negative) == GeoPoint(1.0, 2.0, 0.0)


def test_lookups_are_counted_by_result_without_addresses(city_db: Path) -> None:
    metrics = Metrics()
    counted = GeoIpReader(open_reader(city_db), metrics.geoip_lookups)
    counted.lookup(ip("198.51.100.7"))
    counted.lookup(ip("10.0.0.1"))
    counted.lookup(ip("192.0.2.1"))
    counted.lookup(ip("198.51.100.8"))

    def value(result: str) -> float | None:
        return metrics.registry.get_sample_value("e911_geoip_lookups_total", {"result": result})

    assert value("found") == 2
    assert value("not_found") == 1
    assert value("no_coordinates") == 1
    assert value("error") == 0


def test_an_ipv4_only_database_answers_none_for_ipv6(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "v4.mmdb", {"198.51.100.0/24": city(*PARIS, 20, "Paris")}, ip_version=4
    )
    r = GeoIpReader(open_reader(path))
    assert r.lookup(ip("198.51.100.1")) == GeoPoint(*PARIS, accuracy_km=20)
    assert r.lookup(ip("2001:db8::1")) is None
    r.close()


def test_a_missing_file_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mmdb"
    with pytest.raises(GeoIpError, match=r"E911_GEOIP__DATABASE: file not found: .*nope\.mmdb"):
        open_reader(missing)


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(GeoIpError, match="E911_GEOIP__DATABASE: not a file"):
        open_reader(tmp_path)


@pytest.mark.parametrize("content", [os.urandom(4096), b"", b"not a database\n"])
def test_a_corrupt_file_is_not_a_maxmind_db(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "corrupt.mmdb"
    path.write_bytes(content)
    with pytest.raises(GeoIpError, match=r"E911_GEOIP__DATABASE: .* is not a MaxMind DB"):
        open_reader(path)


@pytest.mark.parametrize("kind", ["GeoLite2-Country", "GeoLite2-ASN", "DBIP-Country-Lite"])
def test_a_database_without_coordinates_is_refused(tmp_path: Path, kind: str) -> None:
    path = write_mmdb(tmp_path / "country.mmdb", {"198.51.100.0/24": {"country": {}}}, kind)
    with pytest.raises(GeoIpError, match=f"is a '{kind}' database, which has no coordinates"):
        open_reader(path)


@pytest.mark.parametrize("kind", ["GeoIP2-City", "DBIP-City-Lite", "GeoIP2-Enterprise"])
def test_city_kinds_are_accepted(tmp_path: Path, kind: str) -> None:
    open_reader(write_mmdb(tmp_path / "city.mmdb", database_type=kind)).close()


def test_an_unknown_kind_is_accepted_with_a_warning(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "home.mmdb", database_type="Acme-Office-Map")
    with capture_logs() as logs:
        open_reader(path).close()
    assert [e["event"] for e in logs] == ["geoip_database_type_unknown"]
    assert logs[0]["database_type"] == "Acme-Office-Map"


def test_open_geoip_is_off_without_a_database() -> None:
    with open_geoip(GeoIpSettings()) as geo:
        assert geo is None


def test_open_geoip_gives_the_check_and_closes_the_reader(city_db: Path) -> None:
    settings = GeoIpSettings(database=city_db, max_distance_km=80)
    with capture_logs() as logs, open_geoip(settings) as geo:
        assert geo is not None
        assert geo.max_distance_km == 80
        assert geo.lookup(ip("203.0.113.1")) == GeoPoint(*NEW_YORK, accuracy_km=5)
    assert [e["event"] for e in logs] == ["geoip_opened"]
    assert logs[0]["database_type"] == "GeoLite2-City"
    # Closed: a look-up now fails inside the reader, and is "no reading", not a crash.
    with capture_logs() as after:
        assert geo.lookup(ip("203.0.113.1")) is None
    assert [e["event"] for e in after] == ["geoip_lookup_failed"]
    assert "closed" in after[0]["error"]


def test_settings_from_the_environment() -> None:
    assert load_settings(environ={}).geoip == GeoIpSettings(database=None, max_distance_km=50.0)
    s = load_settings(
        environ={"E911_GEOIP__DATABASE": "/srv/city.mmdb", "E911_GEOIP__MAX_DISTANCE_KM": "120"}
    )
    assert s.geoip.database == Path("/srv/city.mmdb")
    assert s.geoip.max_distance_km == 120


@pytest.mark.parametrize("value", ["0", "-5", "50000", "far"])
def test_a_bad_distance_is_a_configuration_error_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match="E911_GEOIP__MAX_DISTANCE_KM"):
        load_settings(environ={"E911_GEOIP__MAX_DISTANCE_KM": value})
