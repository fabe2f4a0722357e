"""Session network signals end to end (docs/spec.md#session-events-topic, #network-signals) on the
real broker and database:
decoded, stored with the session, read by the check, and deciding before the IP.

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24; u1 is
assigned hq. The IP groups' BSSIDs are written with plain SQL.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.support import (
    LINES,
    Producer,
    TopicWatcher,
    ce,
    directory,
    eventually,
    now,
    sample,
    wait_consumed,
)

HQ_IP = "203.0.113.9"
HQ_AP = "f0:6e:0b:c2:03:21"
HOME_AP = "F0-6E-0B-C2-03-22"


def session_event(kind: str, session: str, ip: Any, network: Any = None) -> bytes:
    data: dict[str, Any] = {"account_id": "acme", "user_id": "u1", "session_id": session, "ip": ip}
    if network is not None:
        data["network"] = network
    return ce(f"e911.session.{kind}", data, now())


async def test_bssid_decides_before_the_ip_and_a_network_only_change_resolves(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings())
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), key="acme")
        await wait_consumed(app, topics.directory_events, "e911.user.upserted", 1)
        conn = await asyncpg.connect(database)
        try:
            await conn.execute(
                "UPDATE ip_groups SET bssids = CASE ip_group_id "
                "WHEN 'hq-net' THEN '{f06e0bc20321}'::text[] "
                "WHEN 'home-net' THEN '{f06e0bc20322}'::text[] END"
            )
            # A malformed BSSID is invalid data: dead-lettered, no session.
            invalid_before = sample(app, "e911_events_invalid_total", reason="invalid_data")
            await p.send(
                topics.session_events,
                session_event("login", "bad", HQ_IP, {"bssid": "f0:6e:0b:c2:03:2*"}),
                key="u1",
            )
            await eventually(
                lambda: (
                    sample(app, "e911_events_invalid_total", reason="invalid_data")
                    == invalid_before + 1
                )
            )
            # On hq's subnet, but associated with home's access point: home decides.
            await p.send(
                topics.session_events,
                session_event("login", "s1", HQ_IP, {"bssid": HOME_AP}),
                key="u1",
            )
            raised = (await alerts.wait_count("e911.alert.raised", 1, within=15))[0].data
            assert raised["session_id"] == "s1"
            assert raised["ip"] == HQ_IP
            assert raised["assigned_location"] == {
                "location_id": "hq",
                "name": "Headquarters",
                "address_line": LINES["hq"],
            }
            assert raised["recommendation"] == {
                "kind": "ip_group_match",
                "locations": [
                    {"location_id": "home", "name": "Home office", "address_line": LINES["home"]}
                ],
                "total": 1,
                "truncated": False,
            }
            assert raised["matched_by"] == "bssid"
            stored = await conn.fetchrow(
                "SELECT host(ip) AS ip, bssid, switch_chassis, switch_port FROM sessions "
                "WHERE session_id = 's1'"
            )
            assert dict(stored) == {
                "ip": HQ_IP,
                "bssid": "f06e0bc20322",
                "switch_chassis": None,
                "switch_port": None,
            }
            # The same IP, now on hq's access point (and a switch port): only the
            # network changed, and that is enough to resolve at the next check.
            await p.send(
                topics.session_events,
                session_event(
                    "ip_changed",
                    "s1",
                    HQ_IP,
                    {"bssid": HQ_AP, "switch": {"chassis_id": "Core-SW1", "port_id": "Gi1/0/7"}},
                ),
                key="u1",
            )
            resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=15))[0].data
            assert resolved["alert_id"] == raised["alert_id"]
            assert resolved["reason"] == "location_matched"
            stored = await conn.fetchrow(
                "SELECT bssid, switch_chassis, switch_port FROM sessions WHERE session_id = 's1'"
            )
            assert dict(stored) == {
                "bssid": "f06e0bc20321",
                "switch_chassis": "core-sw1",
                "switch_port": "gi1/0/7",
            }
            assert (
                await conn.fetchval("SELECT count(*) FROM sessions WHERE session_id = 'bad'") == 0
            )
        finally:
            await conn.close()
    assert await running.stop() == 0
