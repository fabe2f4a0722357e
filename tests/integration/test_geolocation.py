"""The optional geolocation check through the running daemon (docs/spec.md#geolocation-check), on
the real
broker and database, with a GeoIP database the test writes (tests/geoip_db.py).

Directory: Paris, London and New York offices with coordinates, a Berlin one
without, and no IP groups at all: no network signal can locate anyone, so without
a database every session of a user assigned to Paris is ``undetermined``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from e911d.daemon.runtime.app import App
from tests.geoip_db import LONDON, NEW_YORK, PARIS, write_mmdb
from tests.support import Producer, TopicWatcher, ce, eventually, login, sample, wait_consumed

NY_IP = "203.0.113.9"  # New York in the generated database
PARIS_IP = "198.51.100.7"  # Paris, 20 km accuracy


def geo_directory(account: str = "acme") -> list[bytes]:
    events = [ce("e911.account.upserted", {"account_id": account, "e911_recommendations": True})]
    offices: list[tuple[str, str, tuple[float, float] | None]] = [
        ("paris", "Paris office", PARIS),
        ("london", "London office", LONDON),
        ("ny", "New York office", NEW_YORK),
        ("berlin", "Berlin office", None),
    ]
    for lid, name, coords in offices:
        data: dict[str, Any] = {
            "account_id": account,
            "location_id": lid,
            "name": name,
            "address": {"street": "1 Main St", "city": name.split()[0], "country": "FR"},
        }
        if coords is not None:
            data["coordinates"] = {"lat": coords[0], "lon": coords[1]}
        events.append(ce("e911.location.upserted", data))
    for uid in ("u1", "u2"):
        events.append(
            ce(
                "e911.user.upserted",
                {
                    "account_id": account,
                    "user_id": uid,
                    "e911_recommendations": True,
                    "e911_location_id": "paris",
                },
            )
        )
    return events


async def test_a_session_far_from_its_assigned_location_raises_nearest_locations(
    broker, topics, make_settings, start_app, tmp_path: Path
) -> None:
    db = write_mmdb(tmp_path / "city.mmdb")
    running = await start_app(make_settings(geoip={"database": str(db)}))
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, geo_directory(), key="acme")
        await wait_consumed(app, topics.directory_events, "e911.user.upserted", 2)
        # u1 logs in from New York; u2 from Paris, within the distance: no alert.
        await p.send(topics.session_events, login("acme", "u1", "s-ny", NY_IP), key="u1")
        await p.send(topics.session_events, login("acme", "u2", "s-paris", PARIS_IP), key="u2")
        raised = await alerts.wait_count("e911.alert.raised", 1, within=20)
        data = raised[0].data
        assert data["session_id"] == "s-ny"
        assert data["ip"] == NY_IP
        paris = {
            "location_id": "paris",
            "name": "Paris office",
            "address_line": "1 Main St, Paris, FR",
        }
        assert data["assigned_location"] == paris
        assert data["matched_by"] == "geoip"
        assert data["recommendation"] == {
            "kind": "nearest_locations",
            # nearest first; Berlin has no coordinates, so it is not offered
            "locations": [
                {
                    "location_id": "ny",
                    "name": "New York office",
                    "address_line": "1 Main St, New, FR",
                },
                {
                    "location_id": "london",
                    "name": "London office",
                    "address_line": "1 Main St, London, FR",
                },
                paris,
            ],
            "total": 3,
            "truncated": False,
        }

        # The Paris session is checked too (undetermined, within 50 + 20 km) and
        # raises nothing; every look-up is counted by result, none failed.
        await eventually(lambda: sample(app, "e911_checks_total", outcome="undetermined") >= 1)
        assert sample(app, "e911_geoip_lookups_total", result="found") >= 2
        assert sample(app, "e911_geoip_lookups_total", result="error") == 0
        assert [m.data["session_id"] for m in alerts.of_type("e911.alert.raised")] == ["s-ny"]
    assert await running.stop() == 0


async def start_fails(settings: Any) -> dict[str, Any]:
    """Run the daemon expecting a refused start: the ``startup_failed`` line."""
    with capture_logs() as logs:
        code = await asyncio.wait_for(App(settings).run(), 20)
    assert code == 1
    failed = [e for e in logs if e["event"] == "startup_failed"]
    assert len(failed) == 1, logs
    assert "exc_info" not in failed[0]  # a message, not a traceback
    assert not any(e["event"] == "retrying" for e in logs)
    return failed[0]


async def test_a_missing_database_file_stops_the_start_naming_the_setting(
    make_settings, tmp_path: Path
) -> None:
    missing = tmp_path / "GeoLite2-City.mmdb"
    failed = await start_fails(make_settings(geoip={"database": str(missing)}))
    assert failed["error"] == f"E911_GEOIP__DATABASE: file not found: {missing}"
    assert failed["error_type"] == "GeoIpError"


async def test_a_corrupt_database_file_stops_the_start(make_settings, tmp_path: Path) -> None:
    corrupt = tmp_path / "city.mmdb"
    corrupt.write_bytes(b"\x00garbage" * 512)
    failed = await start_fails(make_settings(geoip={"database": str(corrupt)}))
    assert failed["error"].startswith(f"E911_GEOIP__DATABASE: {corrupt} is not a MaxMind DB")
