"""SIGTERM to ``e911d run`` while PostgreSQL is black-holed (connected, silent): the
process ends within the shutdown bound (docs/spec.md#running-e911d: 10 s), and a new
start after healing stores and raises what the stopped one could not."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import pytest

from tests.e2e.cli import kill
from tests.e2e.test_cli import daemon_env, start_daemon
from tests.fault_proxy import FaultProxy
from tests.faults.blackhole import raised_once, stored, through
from tests.support import Producer, TopicWatcher, directory, eventually, http_get, login

STOP_BOUND_SECONDS = 10.0


@pytest.mark.timeout(180)
async def test_sigterm_during_a_database_black_hole(
    pg_proxy: FaultProxy, database, broker, topics, tmp_path
):
    # The default timeouts: they alone must bound the stop.
    env = daemon_env(broker, topics, through(pg_proxy, database), f"g{uuid.uuid4().hex[:8]}")
    log = tmp_path / "e911d.log"
    proc, port = await start_daemon(env, log)
    try:
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(topics.directory_events, directory(), "acme")
            await p.send(topics.session_events, login("acme", "u1", "s0", "198.51.100.7"), "u1")
            await raised_once(alerts, ["s0"], 30)
            await asyncio.to_thread(pg_proxy.set_mode, "blackhole")
            await p.send(topics.session_events, login("acme", "u1", "s1", "198.51.100.7"), "u1")

            async def not_ready() -> bool:
                return (await http_get(port, "/readyz"))[0] == 503

            await eventually(not_ready, within=15, step=0.2)
            await asyncio.sleep(3)  # the batch in hand and the pool's calls are all waiting
            asked = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
            took = time.monotonic() - asked
            print(f"\nSIGTERM during a database black hole: exited {took:.1f}s after it")
            assert code == 0, log.read_text()[-3000:]
            assert took < STOP_BOUND_SECONDS, log.read_text()[-3000:]

            await asyncio.to_thread(pg_proxy.set_mode, "pass")
            again, _ = await start_daemon(env, log)
            try:
                await raised_once(alerts, ["s0", "s1"], 30)
                assert await stored(database, ["s0", "s1"])
                again.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(again.wait(), 15) == 0
            finally:
                await kill(again)
    finally:
        await kill(proc)
