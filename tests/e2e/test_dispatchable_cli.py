"""Dispatchable addresses and the cut of a recommendation, as an operator meets them:
``e911d directory import`` / ``export`` / ``lint`` and ``e911d run`` in subprocesses,
against a real PostgreSQL and a real broker (docs/spec.md#dispatchable-addresses,
#alerts-topic)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from typing import Any

import pytest
import yaml

from e911d.daemon.core.address import address_line
from tests.e2e.cli import kill, migrated, run_cli
from tests.e2e.test_cli import _tail, daemon_env, start_daemon
from tests.support import Producer, TopicWatcher, login

pytestmark = pytest.mark.e2e

N_LOCATIONS = 20_000
OFFICE_IP = "203.0.113.9"  # the network of g-office, tied to loc-00007
NOWHERE_IP = "192.0.2.77"  # no group: all_locations
# What a Kafka broker accepts by default (message.max.bytes), and what e911d itself
# accepts (E911_KAFKA__MAX_EVENT_BYTES): an alert stays under both.
BROKER_DEFAULT_MAX = 1_048_588
MAX_EVENT_BYTES = 65_536


def _address(i: int) -> dict[str, str]:
    return {
        "street": f"{100 + i % 900} Enterprise Parkway",
        "building": str(1 + i // 1000),
        "floor": str(1 + i % 40),
        "unit": f"Suite {i:05d}",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    }


def _big_directory() -> dict[str, Any]:
    """One account of 20,000 locations (names long enough that the list of them all
    would be megabytes), one group, one user with no assigned location."""
    return {
        "accounts": [
            {
                "account_id": "big",
                "e911_recommendations": True,
                "locations": [
                    {
                        "location_id": f"loc-{i:05d}",
                        "name": f"Example Corporation branch office number {i:05d}",
                        "address": _address(i),
                    }
                    for i in range(N_LOCATIONS)
                ],
                "ip_groups": [
                    {
                        "ip_group_id": "g-office",
                        "name": "Office",
                        "location_id": "loc-00007",
                        "addresses": ["203.0.113.0/24"],
                    }
                ],
                "users": [{"user_id": "u1", "e911_recommendations": True}],
            }
        ]
    }


async def test_an_all_locations_alert_of_20000_locations_fits_and_the_next_one_follows(
    broker, topics, database, tmp_path
):
    db = await migrated(database)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(_big_directory()))
    t0 = time.monotonic()
    code, _, err = await run_cli(db, "directory", "import", path, within=300)
    assert code == 0, err
    imported_s = time.monotonic() - t0
    env = daemon_env(broker, topics, db, f"g{uuid.uuid4().hex[:8]}")
    log = tmp_path / "e911d.log"
    proc, _ = await start_daemon(env, log)
    try:
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            # Both keyed by u1: one partition. The big alert is decided first; the
            # office one after it must be published too (the relay did not stall).
            await p.send(topics.session_events, login("big", "u1", "s-all", NOWHERE_IP), "u1")
            await alerts.wait_count("e911.alert.raised", 1, session_id="s-all", within=60)
            await p.send(topics.session_events, login("big", "u1", "s-office", OFFICE_IP), "u1")
            await alerts.wait_count("e911.alert.raised", 1, session_id="s-office", within=60)
        (big,) = alerts.of_type("e911.alert.raised", "s-all")
        (office,) = alerts.of_type("e911.alert.raised", "s-office")
        assert big.value is not None
        size = len(big.value)
        assert size < MAX_EVENT_BYTES < BROKER_DEFAULT_MAX
        rec = big.data["recommendation"]
        assert rec["kind"] == "all_locations"
        assert (rec["total"], rec["truncated"]) == (N_LOCATIONS, True)
        # The first 50 by name (then id), each with its address on one line.
        assert [loc["location_id"] for loc in rec["locations"]] == [
            f"loc-{i:05d}" for i in range(50)
        ]
        assert rec["locations"][3]["address_line"] == address_line(_address(3))
        assert rec["locations"][3]["address_line"] == (
            "103 Enterprise Parkway, Building 1, Floor 4, Suite 00003, Springfield, IL 62701, US"
        )
        assert office.data["recommendation"] == {
            "kind": "ip_group_match",
            "locations": [
                {
                    "location_id": "loc-00007",
                    "name": "Example Corporation branch office number 00007",
                    "address_line": address_line(_address(7)),
                }
            ],
            "total": 1,
            "truncated": False,
        }
        assert big.headers == office.headers
        assert '"alert_event_refused"' not in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 12)
        finally:
            await kill(proc)
    assert code == 0, _tail(log)
    print(f"imported {N_LOCATIONS} locations in {imported_s:.1f} s; alert {size} bytes")


async def test_import_export_and_lint_of_building_floor_and_unit(database, tmp_path):
    db = await migrated(database)
    hq = {
        "street": "100 Main St",
        "building": "2",
        "floor": "3",
        "unit": "Suite 301",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    }
    document = {
        "accounts": [
            {
                "account_id": "acme",
                "e911_recommendations": True,
                "locations": [
                    {"location_id": "hq", "name": "HQ", "address": hq},
                    # Same building, same floor and unit: nothing tells it apart.
                    {"location_id": "hq-twin", "name": "HQ again", "address": dict(hq)},
                    {
                        "location_id": "shed",
                        "name": "Shed",
                        "address": {"street": "Main St", "city": "Springfield", "country": "US"},
                    },
                ],
                "ip_groups": [
                    {
                        "ip_group_id": f"g-{lid}",
                        "name": lid,
                        "location_id": lid,
                        "addresses": [f"10.0.{n}.0/24"],
                    }
                    for n, lid in enumerate(("hq", "hq-twin", "shed"))
                ],
                "users": [{"user_id": "u1", "e911_location_id": "hq"}],
            }
        ]
    }
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    code, _, err = await run_cli(db, "directory", "import", path)
    assert code == 0, err
    # The export gives back what was imported, in the documented key order.
    code, out, err = await run_cli(db, "directory", "export")
    assert code == 0, err
    exported = yaml.safe_load(out)["accounts"][0]["locations"]
    assert exported[0]["address"] == hq
    assert list(exported[0]["address"]) == [
        "street",
        "building",
        "floor",
        "unit",
        "city",
        "region",
        "postal_code",
        "country",
    ]
    assert "building" not in exported[2]["address"]
    again = tmp_path / "again.yaml"
    again.write_text(out)
    code, out, err = await run_cli(db, "directory", "import", again, "--dry-run")
    assert code == 0, err
    assert not [line for line in out.splitlines() if line[:2] in ("+ ", "~ ", "- ")], out
    # Lint, from the database: the incomplete address is an error, the twin a warning.
    code, out, err = await run_cli(db, "directory", "lint", "--json")
    assert code == 1, err
    found = [(f["code"], f["path"], f["entity_id"]) for f in json.loads(out)["findings"]]
    assert found == [
        ("locations_share_address", "accounts[0].locations[1].address", "hq-twin"),
        ("location_address_incomplete", "accounts[0].locations[2].address", "shed"),
    ]
    messages = [f["message"] for f in json.loads(out)["findings"]]
    assert "street with a number, region, postal code" in messages[1]
    assert "'hq'" in messages[0]
