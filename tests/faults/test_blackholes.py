"""Black holes: PostgreSQL or the broker stays connected and never answers (a dropped
security-group rule, a half-dead NAT), for 60 s. No refusal, no reset: only the
daemon's own timeouts can notice. It must say which dependency is not ready, stop
within the shutdown bound when asked meanwhile, and after healing recover alone with
nothing lost or duplicated.

Every connection goes through a FaultProxy (tests/fault_proxy.py); the broker
advertises the proxy's address, so the clients' every connection after bootstrap
goes through it too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from e911d.consumers.topics import ensure_topics
from e911d.daemon.commands.embedded import EmbeddedBroker
from tests.fault_proxy import FaultProxy
from tests.faults.blackhole import TIMEOUTS, raised_once, stored, through
from tests.ports import held_port
from tests.support import (
    Producer,
    Topics,
    TopicWatcher,
    directory,
    eventually,
    http_get,
    login,
    sample,
    wait_consumed,
)

HOLD_SECONDS = 60.0


async def _until_status(port: int, status: int, within: float) -> tuple[float, str]:
    """Seconds until /readyz answers ``status``, and its body."""
    started = time.monotonic()
    seen = ""

    async def answered() -> bool:
        nonlocal seen
        code, seen = await http_get(port, "/readyz")
        return code == status

    await eventually(answered, within=within, step=0.2)
    return time.monotonic() - started, seen


def _report(fault: str, noticed: float, recovered: float, caught_up: float) -> None:
    print(  # the figures the note reports (pytest -s)
        f"\n{fault}: /readyz 503 {noticed:.1f}s after it began; 200 {recovered:.1f}s after "
        f"it healed; every held alert published {caught_up:.1f}s after it healed; lost 0"
    )


@pytest.mark.timeout(240)
async def test_database_black_hole(
    pg_proxy: FaultProxy, database, broker, topics, make_settings, start_app
):
    settings = make_settings(postgres={**TIMEOUTS["postgres"], "dsn": through(pg_proxy, database)})
    running = await start_app(settings)
    app = running.app
    assert app.http is not None
    port = app.http.port
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        await wait_consumed(app, topics.directory_events, "e911.user.upserted", 1)
        await p.send(topics.session_events, login("acme", "u1", "s0", "198.51.100.7"), "u1")
        await raised_once(alerts, ["s0"], 20)

        began = time.monotonic()
        await asyncio.to_thread(pg_proxy.set_mode, "blackhole")
        held = [f"s{i}" for i in range(1, 6)]
        for sid in held:  # consumed while the database is silent: held, never dropped
            await p.send(topics.session_events, login("acme", "u1", sid, "198.51.100.7"), "u1")
        noticed, body = await _until_status(port, 503, within=15)
        assert "database fail" in body and "kafka ok" in body, body
        await eventually(lambda: sample(app, "e911_database_up") == 0, within=15)
        # Alive meanwhile, and still not ready at the end of the hole.
        while time.monotonic() - began < HOLD_SECONDS:
            assert not running.task.done()
            assert (await http_get(port, "/healthz"))[0] == 200
            await asyncio.sleep(1)
        status, body = await http_get(port, "/readyz")
        assert status == 503 and "database fail" in body, body

        await asyncio.to_thread(pg_proxy.set_mode, "pass")
        healed = time.monotonic()
        recovered, _ = await _until_status(port, 200, within=60)
        await raised_once(alerts, ["s0", *held], 60)
        caught_up = time.monotonic() - healed
        assert await stored(database, ["s0", *held])
        assert sample(app, "e911_events_invalid_total", reason="rejected") == 0
        _report("database black hole", noticed, recovered, caught_up)
        assert noticed < 10 and recovered < 45
    assert await running.stop() == 0


@pytest.mark.timeout(120)
async def test_database_connections_reset(
    pg_proxy: FaultProxy, database, broker, topics, make_settings, start_app
):
    """Every connection to PostgreSQL reset, and new ones too, for a while (a host that
    went away and says so): noticed at once, and healed alone with nothing lost."""
    settings = make_settings(postgres={**TIMEOUTS["postgres"], "dsn": through(pg_proxy, database)})
    running = await start_app(settings)
    app = running.app
    assert app.http is not None
    port = app.http.port
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        await wait_consumed(app, topics.directory_events, "e911.user.upserted", 1)
        await asyncio.to_thread(pg_proxy.set_mode, "reset")
        held = [f"s{i}" for i in range(3)]
        for sid in held:
            await p.send(topics.session_events, login("acme", "u1", sid, "198.51.100.7"), "u1")
        noticed, body = await _until_status(port, 503, within=10)
        assert "database fail" in body, body
        await asyncio.sleep(5)  # reset for a while: retried, nothing dropped
        assert not running.task.done()
        await asyncio.to_thread(pg_proxy.set_mode, "pass")
        healed = time.monotonic()
        recovered, _ = await _until_status(port, 200, within=30)
        await raised_once(alerts, held, 30)
        assert await stored(database, held)
        _report("database connections reset", noticed, recovered, time.monotonic() - healed)
    assert await running.stop() == 0


@pytest.fixture
def proxied_broker() -> Iterator[tuple[EmbeddedBroker, FaultProxy]]:
    """A broker of its own that advertises the proxy: all its traffic goes through it."""
    with held_port() as broker_port:
        proxy = FaultProxy(broker_port).start()
        own = EmbeddedBroker(port=broker_port, advertised=proxy.address)
        try:
            own.start()
        except BaseException:
            proxy.stop()
            raise
    yield own, proxy
    own.stop()
    proxy.stop()


@pytest.fixture
async def broker_topics(proxied_broker: tuple[EmbeddedBroker, FaultProxy]) -> AsyncIterator[Topics]:
    t = Topics.unique()
    await ensure_topics(
        {"bootstrap_servers": proxied_broker[1].address},
        [t.session_events, t.directory_events, t.alerts, t.dead_letter],
        partitions=4,
        replication=1,
    )
    yield t


def _broker_settings(make_settings: Any, proxy: FaultProxy, t: Topics) -> Any:
    return make_settings(
        kafka={**TIMEOUTS["kafka"], "bootstrap_servers": proxy.address, "topics": t.as_settings()},
        postgres=TIMEOUTS["postgres"],
    )


@pytest.mark.timeout(240)
async def test_broker_black_hole(proxied_broker, broker_topics, make_settings, start_app):
    _, proxy = proxied_broker
    t = broker_topics
    running = await start_app(_broker_settings(make_settings, proxy, t))
    app = running.app
    assert app.http is not None
    port = app.http.port
    sessions = [f"s{i}" for i in range(5)]
    async with Producer(proxy.address) as p:
        await p.send_all(t.directory_events, directory(), "acme")
        await wait_consumed(app, t.directory_events, "e911.user.upserted", 1)
        for sid in sessions:  # their alerts fall due during the hole: decided, held
            await p.send(t.session_events, login("acme", "u1", sid, "198.51.100.7"), "u1")
        await wait_consumed(app, t.session_events, "e911.session.login", len(sessions))
    began = time.monotonic()
    await asyncio.to_thread(proxy.set_mode, "blackhole")
    noticed, body = await _until_status(port, 503, within=15)
    assert "kafka fail" in body and "database ok" in body, body
    while time.monotonic() - began < HOLD_SECONDS:
        assert not running.task.done()
        assert (await http_get(port, "/healthz"))[0] == 200
        await asyncio.sleep(1)
    assert sample(app, "e911_alerts_raised_total") == len(sessions)  # decided meanwhile

    await asyncio.to_thread(proxy.set_mode, "pass")
    healed = time.monotonic()
    recovered, _ = await _until_status(port, 200, within=60)
    async with TopicWatcher(proxy.address, t.alerts) as alerts:
        await raised_once(alerts, sessions, 60)
    _report("broker black hole", noticed, recovered, time.monotonic() - healed)
    assert noticed < 10 and recovered < 45
    assert await running.stop() == 0


@pytest.mark.timeout(240)
async def test_stop_during_a_broker_black_hole(
    proxied_broker, broker_topics, make_settings, start_app
):
    _, proxy = proxied_broker
    t = broker_topics
    settings = _broker_settings(make_settings, proxy, t)
    running = await start_app(settings)
    app = running.app
    async with Producer(proxy.address) as p:
        await p.send_all(t.directory_events, directory(), "acme")
        await wait_consumed(app, t.directory_events, "e911.user.upserted", 1)
        await p.send(t.session_events, login("acme", "u1", "s1", "198.51.100.7"), "u1")
        await wait_consumed(app, t.session_events, "e911.session.login", 1)
    await asyncio.to_thread(proxy.set_mode, "blackhole")
    await eventually(lambda: sample(app, "e911_alerts_raised_total") == 1, within=20)
    asked = time.monotonic()
    app.request_stop()
    code = await asyncio.wait_for(running.task, 20)
    took = time.monotonic() - asked
    assert code == 0
    assert took < settings.shutdown_timeout_seconds + 4, took

    await asyncio.to_thread(proxy.set_mode, "pass")
    again = await start_app(settings)
    async with TopicWatcher(proxy.address, t.alerts) as alerts:
        await raised_once(alerts, ["s1"], 30)
    print(f"\nstop during a broker black hole: exited {took:.1f}s after the stop")
    assert await again.stop() == 0
