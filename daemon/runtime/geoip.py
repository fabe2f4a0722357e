"""The GeoIP database reader behind the optional geolocation check (docs/spec.md#geolocation-check).

The pure rule is :mod:`e911d.daemon.core.geo`; this module only turns a MaxMind DB file
(GeoLite2-City, GeoIP2-City, DB-IP City Lite: ``location.latitude``,
``location.longitude``, ``location.accuracy_radius`` in km) into its ``lookup``.

A configured database that cannot be used must stop the start, not be skipped: an
operator who set ``E911_GEOIP__DATABASE`` expects alerts from it, and a daemon that
quietly ran without it would look healthy while never geolocating anything. So a
missing, unreadable or non-MMDB file, and a database of a kind that has no
coordinates (Country, ASN, ISP, ...), raise :class:`GeoIpError` at start. A type
name we do not know (a home-made database) is only warned about: it may well carry
``location``. Once open, a look-up never raises: an address that is not in the
database, a record of an odd shape or a read error is "no reading" (``None``), which
leaves the session ``undetermined`` exactly as without a database.

The reader is memory-mapped and read-only; the file must not be replaced while the
daemon runs (restart to load a new one). That is also why memos stay valid
(:mod:`e911d.daemon.core.memo`): a geolocation verdict depends only on the session's IP
(a change forgets the memo), the locations' coordinates (the directory version)
and this file, which does not change under a running daemon.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import maxminddb
import structlog
from maxminddb.errors import InvalidDatabaseError
from prometheus_client import Counter

from e911d.config import GeoIpSettings
from e911d.daemon.core.geo import GeoCheck, GeoPoint, LookupResult
from e911d.daemon.core.ip import IPAddress, normalize_ip

log = structlog.get_logger(__name__)

SETTING = "E911_GEOIP__DATABASE"

# Words in a database type that say "this one has coordinates" / "this one has none".
_LOCATING = frozenset({"city", "enterprise", "location"})
_NOT_LOCATING = frozenset({"country", "asn", "isp", "domain", "connection", "anonymous"})


class GeoIpError(Exception):
    """The configured GeoIP database cannot be used; the message names the setting."""


def point_of(record: object) -> GeoPoint | None:
    """The coordinates in a City-format record, or None when it has no usable ones.

    Whatever shape the record has (a vendor's extension, a home-made database), this
    never raises: a bad reading must not fail a check.
    """
    if not isinstance(record, Mapping):
        return None
    location = record.get("location")
    if not isinstance(location, Mapping):
        return None
    lat = _number(location.get("latitude"))
    lon = _number(location.get("longitude"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    radius = _number(location.get("accuracy_radius"))
    return GeoPoint(lat, lon, radius if radius is not None and radius >= 0 else 0.0)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class GeoIpReader:
    """An open MaxMind DB; :meth:`lookup` is the :class:`GeoCheck`'s lookup."""

    def __init__(self, reader: maxminddb.Reader, counter: Counter | None = None) -> None:
        self._reader = reader
        self._counter = counter
        self._ipv4_only = reader.metadata().ip_version == 4
        self._error_logged = False

    def lookup(self, ip: IPAddress) -> GeoPoint | None:
        point, result = self._read(ip)
        if self._counter is not None:
            self._counter.labels(result=result).inc()
        return point

    def _read(self, ip: IPAddress) -> tuple[GeoPoint | None, LookupResult]:
        ip = normalize_ip(ip)  # a dual-stack socket's spelling of an IPv4 client
        if self._ipv4_only and ip.version == 6:
            return None, LookupResult.NOT_FOUND
        try:
            record = self._reader.get(ip)
        except (InvalidDatabaseError, ValueError, OSError) as exc:
            # A damaged data section: the session stays undetermined, as without a
            # database; logged once (the metric counts every one), never per check.
            if not self._error_logged:
                self._error_logged = True
                log.error("geoip_lookup_failed", error=str(exc), error_type=type(exc).__name__)
            return None, LookupResult.ERROR
        if record is None:
            return None, LookupResult.NOT_FOUND
        point = point_of(record)
        return point, LookupResult.FOUND if point else LookupResult.NO_COORDINATES

    @property
    def metadata(self) -> maxminddb.reader.Metadata:
        return self._reader.metadata()

    def close(self) -> None:
        self._reader.close()


def open_reader(path: Path) -> maxminddb.Reader:
    """Open ``path`` as a MaxMind DB, or raise :class:`GeoIpError` saying why not."""
    if not path.exists():
        raise GeoIpError(f"{SETTING}: file not found: {path}")
    if not path.is_file():
        raise GeoIpError(f"{SETTING}: not a file: {path}")
    try:
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except OSError as exc:
        raise GeoIpError(f"{SETTING}: cannot read {path}: {exc.strerror or exc}") from exc
    except (InvalidDatabaseError, ValueError) as exc:
        # MaxMind ships GeoLite2-City.tar.gz; the .mmdb inside is what is wanted.
        raise GeoIpError(
            f"{SETTING}: {path} is not a MaxMind DB (.mmdb) file "
            "(unpack a .tar.gz or .zip download first)"
        ) from exc
    try:
        check_type(reader.metadata().database_type, path)
    except GeoIpError:
        reader.close()
        raise
    return reader


def check_type(database_type: str, path: Path) -> bool:
    """Refuse a database kind known to carry no coordinates; True if known to carry them.

    False (unknown kind, e.g. a home-made database) is allowed with a warning.
    """
    words = set(re.split(r"[^a-z0-9]+", database_type.casefold()))
    if words & _LOCATING:
        return True
    if words & _NOT_LOCATING:
        raise GeoIpError(
            f"{SETTING}: {path} is a {database_type!r} database, which has no coordinates; "
            "use a City database (GeoLite2-City, GeoIP2-City, DB-IP City Lite)"
        )
    log.warning("geoip_database_type_unknown", path=str(path), database_type=database_type)
    return False


@contextmanager
def open_geoip(
    settings: GeoIpSettings, counter: Counter | None = None
) -> Iterator[GeoCheck | None]:
    """The geolocation check the settings ask for (None: off), closed on exit."""
    if settings.database is None:
        yield None
        return
    reader = GeoIpReader(open_reader(settings.database), counter)
    meta = reader.metadata
    log.info(
        "geoip_opened",
        path=str(settings.database),
        database_type=meta.database_type,
        built=dt.datetime.fromtimestamp(meta.build_epoch, dt.UTC).date().isoformat(),
        max_distance_km=settings.max_distance_km,
    )
    try:
        yield GeoCheck(reader.lookup, settings.max_distance_km)
    finally:
        reader.close()
