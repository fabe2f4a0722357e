"""Network signals and geolocation through the console script (docs/spec.md#geolocation-check,
#network-signals): a BSSID
beats the IP, a switch port beats the IP, a non-locating VPN egress raises nothing and
settles an open alert as ``location_undetermined``, and a generated GeoIP database
raises ``nearest_locations``. One daemon serves every scenario, each on its own user."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import kill
from tests.e2e.test_cli import _tail, daemon_env, metric, start_daemon
from tests.geoip_db import city, write_mmdb
from tests.support import (
    Producer,
    Received,
    TopicWatcher,
    ce,
    eventually,
    http_get,
    ip_changed,
    login,
)

pytestmark = pytest.mark.e2e

ACCOUNT = "acme"
HQ_IP, HOME_IP, VPN_IP, ABROAD_IP = "203.0.113.10", "198.51.100.7", "192.0.2.5", "100.64.0.5"
PARIS = (48.8566, 2.3522)
NEW_YORK = (40.7128, -74.0060)
LONDON = (51.5072, -0.1276)
ADDRESS = {"street": "1 Main St", "city": "Springfield", "country": "US"}


def _location(lid: str, name: str, coords: tuple[float, float] | None = None) -> bytes:
    data: dict[str, Any] = {"account_id": ACCOUNT, "location_id": lid, "name": name}
    data["address"] = ADDRESS
    if coords is not None:
        data["coordinates"] = {"lat": coords[0], "lon": coords[1]}
    return ce("e911.location.upserted", data)


def _group(gid: str, location: str | None, **fields: Any) -> bytes:
    data = {"account_id": ACCOUNT, "ip_group_id": gid, "name": gid, "location_id": location}
    return ce("e911.ip_group.upserted", {"addresses": [], **data, **fields})


def _user(uid: str, location: str) -> bytes:
    return ce(
        "e911.user.upserted",
        {
            "account_id": ACCOUNT,
            "user_id": uid,
            "e911_recommendations": True,
            "e911_location_id": location,
        },
    )


def directory() -> list[bytes]:
    return [
        ce("e911.account.upserted", {"account_id": ACCOUNT, "e911_recommendations": False}),
        _location("hq", "Headquarters", NEW_YORK),
        _location("floor3", "HQ floor 3"),
        _location("floor2", "HQ floor 2"),
        _location("home", "Home office"),
        _location("paris", "Paris office", PARIS),
        _location("london", "London office", LONDON),
        _group("hq-net", "hq", addresses=["203.0.113.0/24"]),
        _group("home-net", "home", addresses=["198.51.100.0/24"]),
        # Spelled as a controller would print it; the session sends another spelling.
        _group("floor3-wifi", "floor3", bssids=["F0-6E-0B-C2-03-2*"]),
        _group(
            "floor2-ports",
            "floor2",
            switches=[{"chassis_id": "00:1b:54:aa:bb:cc", "port_id": "Gi1/0/12"}],
        ),
        _group("vpn-egress", None, addresses=["192.0.2.0/24"], locating=False),
        *(
            _user(uid, loc)
            for uid, loc in (
                ("u-bssid", "hq"),
                ("u-port", "hq"),
                ("u-vpn", "hq"),
                ("u-vpn-only", "hq"),
                ("u-geo", "paris"),
            )
        ),
    ]


def _one(raised: list[Received], session: str) -> dict[str, Any]:
    (m,) = [m for m in raised if m.data["session_id"] == session]
    return m.data


async def test_signals_decide_before_the_ip_and_geolocation_is_the_last_resort(
    broker, topics, database, tmp_path: Path
) -> None:
    geo_db = write_mmdb(tmp_path / "city.mmdb", {"100.64.0.0/16": city(*NEW_YORK, 20, "NYC")})
    env = daemon_env(broker, topics, database, f"g{uuid.uuid4().hex[:8]}")
    env["E911_GEOIP__DATABASE"] = str(geo_db)
    log = tmp_path / "e911d.log"
    proc, port = await start_daemon(env, log)
    try:
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(topics.directory_events, directory(), ACCOUNT)
            wifi = {"bssid": "f0:6e:0b:c2:03:21"}
            port_12 = {"switch": {"chassis_id": "00-1B-54-AA-BB-CC", "port_id": "gi1/0/12"}}
            for uid, sid, ip, network in (
                ("u-bssid", "s-bssid", HQ_IP, wifi),
                ("u-port", "s-port", HQ_IP, port_12),
                ("u-vpn", "s-vpn", HOME_IP, None),
                ("u-vpn-only", "s-vpn-only", VPN_IP, None),
                ("u-geo", "s-geo", ABROAD_IP, None),
            ):
                event = login(ACCOUNT, uid, sid, ip, network=network)
                await p.send(topics.session_events, event, uid)
            raised = await alerts.wait_count("e911.alert.raised", 4, within=40)

            # The access point names floor 3 although the IP is HQ's network.
            bssid = _one(raised, "s-bssid")
            assert bssid["matched_by"] == "bssid"
            assert bssid["recommendation"]["kind"] == "ip_group_match"
            assert [loc["location_id"] for loc in bssid["recommendation"]["locations"]] == [
                "floor3"
            ]
            # The switch port beats the IP the same way.
            by_port = _one(raised, "s-port")
            assert by_port["matched_by"] == "switch_port"
            assert [loc["location_id"] for loc in by_port["recommendation"]["locations"]] == [
                "floor2"
            ]
            # A home IP, no other signal: the IP decides.
            assert _one(raised, "s-vpn")["matched_by"] == "ip"
            # Paris is assigned, the database puts the address in New York: the located
            # offices nearest first.
            geo = _one(raised, "s-geo")
            assert geo["matched_by"] == "geoip"
            assert geo["recommendation"]["kind"] == "nearest_locations"
            assert [loc["location_id"] for loc in geo["recommendation"]["locations"]] == [
                "hq",
                "london",
                "paris",
            ]

            # The VPN user connects through the egress: nothing locates them any more.
            to_vpn = ip_changed(ACCOUNT, "u-vpn", "s-vpn", VPN_IP)
            await p.send(topics.session_events, to_vpn, "u-vpn")
            resolved = await alerts.wait_count("e911.alert.resolved", 1, within=30)
            assert resolved[0].data["session_id"] == "s-vpn"
            assert resolved[0].data["reason"] == "location_undetermined"

            # Several checks later, the session that only ever came through the VPN has
            # still raised nothing, and neither has the one the VPN settled.
            async def six_undetermined_checks() -> bool:
                _, body = await http_get(port, "/metrics")
                return metric(body, 'e911_checks_total{outcome="undetermined"}') >= 6

            await eventually(six_undetermined_checks, within=30, step=0.2)
            raised_now = [m for m in alerts.messages if m.type == "e911.alert.raised"]
            assert {m.data["session_id"] for m in raised_now} == {
                "s-bssid",
                "s-port",
                "s-vpn",
                "s-geo",
            }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 12)
        finally:
            await kill(proc)  # if it did not stop in time
    assert code == 0, _tail(log)
