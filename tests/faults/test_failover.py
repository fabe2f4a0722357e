"""PostgreSQL failover: the primary dies, its asynchronous replica is promoted, and the
daemon, given both hosts with ``target_session_attrs=read-write``, follows alone.

The replica streams through a FaultProxy that the trial black-holes before the kill,
so the promoted replica has really lost the last commits (sessions, offsets, alerts
already published): the daemon must notice that the database's offsets are behind
what it stored, and consume that stretch again (docs/spec.md#scale-and-durability).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.fault_proxy import FaultProxy
from tests.pg_cluster import ReplicatedPostgres
from tests.support import Producer, TopicWatcher, ce, directory, eventually, http_get, login, sample

USERS = [f"u{i}" for i in range(5)]


@pytest.fixture
def cluster() -> Iterator[tuple[ReplicatedPostgres, FaultProxy]]:
    proxies: list[FaultProxy] = []

    def through_proxy(primary_port: int) -> int:
        proxies.append(FaultProxy(primary_port).start())
        return proxies[0].port

    pg = ReplicatedPostgres()
    try:
        pg.start(relay=through_proxy)
        yield pg, proxies[0]
    finally:
        pg.stop()
        for proxy in proxies:
            proxy.stop()


async def _admin(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _logins(p: Producer, topic: str, first: int, last: int) -> list[str]:
    """Sessions s<first>..s<last-1>, from the home network while the users are set at HQ:
    each must raise exactly one alert."""
    sessions = []
    for i in range(first, last):
        user = USERS[i % len(USERS)]
        await p.send(topic, login("acme", user, f"s{i}", f"198.51.100.{i % 200 + 1}"), user)
        sessions.append(f"s{i}")
    return sessions


def _one_id_per_session(alerts: TopicWatcher, sessions: list[str]) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {s: set() for s in sessions}
    for m in alerts.of_type("e911.alert.raised"):
        sid = m.data.get("session_id")
        if sid in ids:
            ids[sid].add(str(m.event["id"]))
    return ids


@pytest.mark.timeout(240)
async def test_follows_a_promoted_replica_and_consumes_the_lost_commits_again(
    cluster: tuple[ReplicatedPostgres, FaultProxy], broker, topics, make_settings, start_app
):
    pg, replication = cluster
    await _admin(pg.primary.admin_dsn(), "CREATE DATABASE e911d")
    await asyncio.to_thread(pg.wait_replicated)
    running = await start_app(make_settings(postgres={"dsn": pg.dsn("e911d")}))
    app = running.app
    assert app.http is not None
    port = app.http.port
    before_pid = app.listener.backend_pid
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        users = {u: (False, "hq") for u in USERS}
        await p.send_all(topics.directory_events, directory(users=users), "acme")
        sessions = await _logins(p, topics.session_events, 0, 20)
        await alerts.wait_for(lambda _m: all(_one_id_per_session(alerts, sessions).values()), 30)
        await asyncio.to_thread(pg.wait_replicated)

        # Replication cut: what follows reaches the primary only, and is lost with it.
        await asyncio.to_thread(replication.set_mode, "blackhole")
        lost = await _logins(p, topics.session_events, 20, 40)
        newcomer = ce(
            "e911.user.upserted",
            {"account_id": "acme", "user_id": "u9", "e911_recommendations": False},
        )
        await p.send(topics.directory_events, newcomer, "acme")
        await alerts.wait_for(lambda _m: all(_one_id_per_session(alerts, lost).values()), 30)
        published = _one_id_per_session(alerts, lost)

        killed_at = time.monotonic()
        await asyncio.to_thread(pg.kill_primary)
        status, body = await http_get(port, "/readyz")
        noticed = time.monotonic() - killed_at
        assert status == 503 and "database fail" in body, body
        await asyncio.sleep(1)  # a second with no primary at all: still not ready
        status, body = await http_get(port, "/readyz")
        assert status == 503 and "database fail" in body, body

        promoted_at = time.monotonic()
        await asyncio.to_thread(pg.promote)
        later = await _logins(p, topics.session_events, 40, 60)

        async def ready() -> bool:
            return (await http_get(port, "/readyz"))[0] == 200

        await eventually(ready, within=30, step=0.2)
        recovered = time.monotonic() - promoted_at
        await eventually(lambda: sample(app, "e911_database_rewinds_total") >= 1, within=30)

        everyone = sessions + lost + later
        new_primary = pg.replica.admin_dsn("e911d")

        async def all_stored() -> bool:
            rows = await _admin(new_primary, "SELECT session_id FROM sessions")
            return {r["session_id"] for r in rows} >= set(everyone)

        await eventually(all_stored, within=60, step=0.5)
        rows = await _admin(new_primary, "SELECT user_id FROM users WHERE user_id = 'u9'")
        assert len(rows) == 1  # the lost directory change was consumed again too
        await alerts.wait_for(lambda _m: all(_one_id_per_session(alerts, everyone).values()), 60)
        ids = _one_id_per_session(alerts, everyone)
        assert all(len(v) == 1 for v in ids.values()), {s: v for s, v in ids.items() if len(v) > 1}
        # The alerts of the lost stretch were raised again with the ids already published.
        assert {s: ids[s] for s in lost} == published

        # The LISTEN connection follows the primary too: a fix written by SQL on the new
        # primary is heard, and resolves u0's alerts.
        await eventually(lambda: sample(app, "e911_directory_listener_up") == 1, within=30)
        pid = app.listener.backend_pid
        assert pid is not None and pid != before_pid
        rows = await _admin(new_primary, "SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid)
        assert len(rows) == 1  # the listener's server process is the new primary's
        await _admin(new_primary, "UPDATE users SET e911_location_id = 'home' WHERE user_id = 'u0'")
        u0 = [s for i, s in enumerate(everyone) if i % len(USERS) == 0]
        resolved = await alerts.wait_count("e911.alert.resolved", len(u0), within=30)
        assert {m.data["reason"] for m in resolved} == {"location_updated"}
        print(
            f"\nfailover: /readyz 503 {noticed:.2f}s after the kill; "
            f"200 {recovered:.2f}s after the promotion; sessions stored {len(everyone)}/"
            f"{len(everyone)}; lost stretch re-consumed: {len(lost)} sessions, "
            f"rewinds {sample(app, 'e911_database_rewinds_total'):g}"
        )
        assert noticed < 5 and recovered < 30
    assert await running.stop() == 0


@pytest.mark.timeout(180)
async def test_follows_the_promoted_replica_when_the_old_primary_black_holes(
    cluster: tuple[ReplicatedPostgres, FaultProxy], broker, topics, make_settings, start_app
):
    """The old primary's address stops answering (no refusal): each host gets its own
    connect timeout, so the next host in the DSN, the promoted replica, is reached."""
    pg, _ = cluster
    await _admin(pg.primary.admin_dsn(), "CREATE DATABASE e911d")
    await asyncio.to_thread(pg.wait_replicated)
    with FaultProxy(pg.primary.port) as old_address:
        dsn = (
            f"postgresql://postgres@{old_address.address},{pg.replica.address}/e911d"
            "?target_session_attrs=read-write"
        )
        settings = make_settings(postgres={"dsn": dsn, "connect_timeout_seconds": 3})
        running = await start_app(settings)
        app = running.app
        assert app.http is not None
        port = app.http.port
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            users = {u: (False, "hq") for u in USERS}
            await p.send_all(topics.directory_events, directory(users=users), "acme")
            before = await _logins(p, topics.session_events, 0, 10)
            await alerts.wait_for(lambda _m: all(_one_id_per_session(alerts, before).values()), 30)
            await asyncio.to_thread(pg.wait_replicated)

            await asyncio.to_thread(old_address.set_mode, "blackhole")
            await asyncio.to_thread(pg.kill_primary)
            await asyncio.to_thread(pg.promote)
            promoted_at = time.monotonic()
            after = await _logins(p, topics.session_events, 10, 20)

            async def ready() -> bool:
                return (await http_get(port, "/readyz"))[0] == 200

            await eventually(ready, within=60, step=0.5)
            recovered = time.monotonic() - promoted_at
            everyone = before + after
            await alerts.wait_for(
                lambda _m: all(_one_id_per_session(alerts, everyone).values()), 60
            )
            ids = _one_id_per_session(alerts, everyone)
            assert all(len(v) == 1 for v in ids.values()), ids
            rows = await _admin(pg.replica.admin_dsn("e911d"), "SELECT session_id FROM sessions")
            assert {r["session_id"] for r in rows} >= set(everyone)
            new_primary = pg.replica.admin_dsn("e911d")

            async def listening_on_the_new_primary() -> bool:
                # The LISTEN connection to the silent old primary may still count as up
                # until its keepalive notices: wait until its backend is the new one's.
                pid = app.listener.backend_pid
                if pid is None or sample(app, "e911_directory_listener_up") != 1:
                    return False
                query = "SELECT 1 FROM pg_stat_activity WHERE pid = $1"
                return len(await _admin(new_primary, query, pid)) == 1

            await eventually(listening_on_the_new_primary, within=30, step=0.5)
            print(f"\nfailover past a silent old primary: /readyz 200 {recovered:.1f}s after it")
        assert await running.stop() == 0
