"""The main path on the real broker and database: login → check → alert → logout."""

from __future__ import annotations

import time

from tests.support import Producer, TopicWatcher, directory, login, logout


async def test_mismatch_raises_then_logout_resolves(broker, topics, make_settings, start_app):
    settings = make_settings()
    running = await start_app(settings)
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), key="acme")
        t0 = time.time()
        await p.send(topics.session_events, login("acme", "u1", "s1", "198.51.100.7"), key="u1")
        raised = await alerts.wait_count("e911.alert.raised", 1, timeout=15)
        elapsed = time.time() - t0
        assert 1.5 <= elapsed <= 5.0, elapsed
        data = raised[0].data
        assert data["assigned_location"] == {"location_id": "hq", "name": "Headquarters"}
        assert data["recommendation"]["kind"] == "ip_group_match"
        assert data["recommendation"]["locations"] == [
            {"location_id": "home", "name": "Home office"}
        ]
        await p.send(topics.session_events, logout("acme", "u1", "s1"), key="u1")
        resolved = await alerts.wait_count("e911.alert.resolved", 1, timeout=10)
        assert resolved[0].data["reason"] == "session_ended"
        assert resolved[0].data["alert_id"] == data["alert_id"]
    assert await running.stop() == 0
