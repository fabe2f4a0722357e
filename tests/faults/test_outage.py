"""A database outage: the daemon waits, says it is not ready, loses nothing, recovers."""

from __future__ import annotations

import asyncio

import asyncpg

from e911d.daemon.commands.embedded import EmbeddedPostgres
from tests.ports import start_broker
from tests.support import (
    Producer,
    TopicWatcher,
    directory,
    eventually,
    http_get,
    login,
    sample,
)


async def test_database_outage_loses_nothing(broker, topics, make_settings, start_app):
    # Its own cluster in a folder of its own under /tmp, not under pytest's tmp_path:
    # as root, pgserver runs PostgreSQL as another user and opens the folder's parents
    # to it, and pytest makes /tmp/pytest-of-root private again whenever a worker sets
    # up its temporary folders, so pg_ctl could no longer reach the cluster to stop it.
    pg = EmbeddedPostgres().start()
    try:
        settings = make_settings(postgres={"dsn": pg.dsn})
        running = await start_app(settings)
        app = running.app
        assert app.http is not None
        port = app.http.port
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(topics.directory_events, directory(), "acme")
            await eventually(
                lambda: (
                    sample(
                        app,
                        "e911_events_total",
                        topic=topics.directory_events,
                        type="e911.user.upserted",
                    )
                    == 1
                )
            )
            await asyncio.to_thread(pg.stop_server)
            status, body = await http_get(port, "/readyz")
            assert status == 503 and "database fail" in body
            # Consumed while the database is away: held and retried, not dropped.
            await p.send(topics.session_events, login("acme", "u1", "s1", "198.51.100.7"), "u1")
            await eventually(lambda: sample(app, "e911_database_up") == 0, within=10)
            assert not running.task.done()
            assert (await http_get(port, "/healthz"))[0] == 200

            await asyncio.to_thread(pg.start_server)
            raised = await alerts.wait_count("e911.alert.raised", 1, within=30)
            assert raised[0].data["session_id"] == "s1"
            status, _ = await http_get(port, "/readyz")
            assert status == 200
            # The LISTEN connection came back too: a fix written by SQL is heard.
            await eventually(lambda: sample(app, "e911_directory_listener_up") == 1, within=15)
            heard = sample(app, "e911_directory_notices_total", kind="user")
            conn = await asyncpg.connect(pg.dsn)
            try:
                await conn.execute("UPDATE users SET e911_location_id = 'home'")
            finally:
                await conn.close()
            await eventually(
                lambda: sample(app, "e911_directory_notices_total", kind="user") > heard, within=5
            )
            resolved = await alerts.wait_count("e911.alert.resolved", 1, within=10)
            assert resolved[0].data["reason"] == "location_updated"
        assert await running.stop() == 0
    finally:
        pg.stop()


async def test_broker_outage_is_not_ready_but_alive(topics, make_settings, start_app):
    """With its broker gone the daemon stays up, says it is not ready, and still stops
    cleanly on request."""
    from e911d.consumers.topics import ensure_topics

    own = start_broker()
    try:
        await ensure_topics(
            {"bootstrap_servers": own.bootstrap_servers},
            [topics.session_events, topics.directory_events, topics.alerts, topics.dead_letter],
            partitions=4,
            replication=1,
        )
        running = await start_app(make_settings(kafka={"bootstrap_servers": own.bootstrap_servers}))
        app = running.app
        assert app.http is not None
        assert (await http_get(app.http.port, "/readyz"))[0] == 200
        await asyncio.to_thread(own.stop)
        status, body = await http_get(app.http.port, "/readyz")
        assert status == 503 and "kafka fail" in body
        assert (await http_get(app.http.port, "/healthz"))[0] == 200
        await app.services.housekeeping.update_gauges()
        assert sample(app, "e911_kafka_up") == 0
        assert not running.task.done()
        t0 = asyncio.get_running_loop().time()
        assert await running.stop() == 0
        assert asyncio.get_running_loop().time() - t0 < 10
    finally:
        own.stop()
