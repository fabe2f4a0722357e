"""The operations endpoint: metrics, liveness, readiness."""

from __future__ import annotations

import asyncio
import gzip

from e911d import __version__
from tests.support import (
    Producer,
    TopicWatcher,
    directory,
    eventually,
    http_fetch,
    http_get,
    login,
    logout,
    sample,
)


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
        "e911_ready 1.0",
        f'e911_build_info{{version="{__version__}"}} 1.0',
        "e911_outbox_pending 0.0",
        "e911_outbox_oldest_age_seconds 0.0",
        "e911_batch_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "python_gc_collections_total",
        "python_info",
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


async def test_metrics_negotiate_openmetrics_and_gzip(broker, topics, make_settings, start_app):
    """Prometheus asks for OpenMetrics and gzip; curl asks for neither."""
    running = await start_app(make_settings())
    port = running.app.http.port

    status, headers, body = await http_fetch(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "content-encoding" not in headers
    assert b"# TYPE e911_checks_total counter" in body
    assert not body.endswith(b"# EOF\n")

    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    status, headers, body = await http_fetch(port, "/metrics", {"Accept": accept})
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    assert b'e911_build_info{version="' in body

    status, headers, body = await http_fetch(
        port, "/metrics", {"Accept": accept, "Accept-Encoding": "gzip, deflate"}
    )
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert int(headers["content-length"]) == len(body)
    plain = gzip.decompress(body)
    assert plain.endswith(b"# EOF\n") and b"e911_alerts_open" in plain

    # name[] restricts the families, as prometheus_client's own handler does.
    status, headers, body = await http_fetch(port, "/metrics?name[]=e911_alerts_open")
    assert status == 200
    assert b"e911_alerts_open " in body and b"e911_checks_total" not in body

    status, headers, body = await http_fetch(port, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    assert await running.stop() == 0


async def test_alert_open_duration_and_outbox_age(broker, topics, make_settings, start_app):
    """A resolved alert is observed by how long it was open; an outbox row that is not
    published shows its age."""
    running = await start_app(make_settings())
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        await p.send(topics.session_events, login("acme", "u1", "s1", "198.51.100.7"), "u1")
        await alerts.wait_count("e911.alert.raised", 1, within=15)
        # Hold the relay: the resolution is committed to the outbox but not published.
        async with app.services.relay.paused():
            await p.send(topics.session_events, logout("acme", "u1", "s1"), "u1")
            await eventually(
                lambda: sample(app, "e911_alerts_resolved_total", reason="session_ended") == 1
            )
            await app.services.housekeeping.update_gauges()
            assert sample(app, "e911_outbox_pending") == 1
            held = sample(app, "e911_outbox_oldest_age_seconds")
            assert held > 0
            await app.services.housekeeping.update_gauges()
            assert sample(app, "e911_outbox_oldest_age_seconds") > held
        await alerts.wait_count("e911.alert.resolved", 1, within=10)
    count = sample(app, "e911_alert_open_duration_seconds_count", reason="session_ended")
    total = sample(app, "e911_alert_open_duration_seconds_sum", reason="session_ended")
    assert count == 1
    assert 0 < total < 30

    async def outbox_empty() -> bool:
        return (await app.services.relay.pending())[0] == 0

    await eventually(outbox_empty)
    await app.services.housekeeping.update_gauges()
    assert sample(app, "e911_outbox_oldest_age_seconds") == 0
    assert await running.stop() == 0
