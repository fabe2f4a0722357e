"""The operations endpoint: metrics, liveness, readiness."""

from __future__ import annotations

import asyncio

from tests.support import Producer, TopicWatcher, directory, http_get, login


async def test_health_ready_and_metrics(broker, topics, make_settings, start_app):
    running = await start_app(make_settings())
    app = running.app
    assert app.http is not None
    port = app.http.port
    status, body = await http_get(port, "/healthz")
    assert status == 200
    status, body = await http_get(port, "/readyz")
    assert status == 200, body
    assert "database ok" in body and "kafka ok" in body and "partitions_loaded ok" in body
    assert "directory_listener ok" in body
    assert (await http_get(port, "/nope"))[0] == 404
    assert (await http_get(port, "/metrics", "POST"))[0] == 405

    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        await p.send(
            topics.session_events, login("acme", "u1", "secret-session", "198.51.100.77"), "u1"
        )
        await alerts.wait_count("e911.alert.raised", 1)
    await app.services.housekeeping.update_gauges()
    status, body = await http_get(port, "/metrics")
    assert status == 200
    for name in (
        "e911_events_total",
        "e911_events_invalid_total",
        "e911_sessions_active 1.0",
        'e911_checks_total{outcome="mismatch"}',
        "e911_check_lateness_seconds_bucket",
        "e911_alerts_raised_total 1.0",
        "e911_alerts_resolved_total",
        "e911_alerts_open 1.0",
        "e911_database_up 1.0",
        "e911_kafka_up 1.0",
        "e911_partitions_owned 4.0",
    ):
        assert name in body, name
    # No IP address, user id or session id ever appears in a label.
    assert "198.51.100.77" not in body
    assert 'u1"' not in body
    assert "secret-session" not in body

    # Once stopping, the instance is no longer ready.
    app.request_stop()
    await asyncio.sleep(0)
    status, body = await http_get(port, "/readyz")
    assert status == 503
    assert "running fail" in body
    assert await asyncio.wait_for(running.task, 15) == 0
