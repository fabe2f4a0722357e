"""The relay under faults (docs/architecture.md#the-relay-under-faults): a broker that
stops answering in the middle of a batch, and a kill -9 after the broker acknowledged
a batch but before its outbox rows were deleted. Either way every event decided
reaches the topic, with its one CloudEvents id, in order per session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid

import asyncpg

from e911d.consumers.topics import ensure_topics
from tests.alert_order import RAISED, ids_by_alert, lost_events, replay
from tests.daemon_process import Daemon, daemon_env
from tests.ports import start_broker
from tests.support import (
    Producer,
    TopicWatcher,
    directory,
    eventually,
    ip_changed,
    login,
    sample,
)

HOME_IP = "198.51.100.7"
ELSEWHERE_IP = "192.0.2.7"  # no network: another mismatch (all_locations), superseding
GATE = 911_911  # the advisory lock the test holds to keep the relay's delete waiting

# The relay's DELETE waits here while the test holds the gate: the broker has
# acknowledged the batch, and its rows are not deleted yet.
GATE_SQL = f"""
CREATE FUNCTION test_outbox_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({GATE});
    RETURN OLD;
END $$;
CREATE TRIGGER test_outbox_gate BEFORE DELETE ON outbox
    FOR EACH ROW EXECUTE FUNCTION test_outbox_gate();
"""


async def test_kill_9_between_the_acks_and_the_delete_republishes_the_same_event(
    broker, topics, database, tmp_path
):
    conn = await asyncpg.connect(database)
    gate = await asyncpg.connect(database)
    env = daemon_env(broker.bootstrap_servers, topics, database, f"g{uuid.uuid4().hex[:8]}")
    first = Daemon(env, tmp_path / "first.log")
    second = Daemon(env, tmp_path / "second.log")
    try:
        await conn.execute(GATE_SQL)
        await gate.execute("SELECT pg_advisory_lock($1)", GATE)
        await first.start()
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
            await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), "u1")
            # Acknowledged: on the topic. And the relay's delete waits at the gate.
            await alerts.wait_count(RAISED, 1, within=60)

            async def deleting() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND objid = $1 AND NOT granted",
                        GATE,
                    )
                )

            await eventually(deleting, within=10)
            first.signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL
            # The killed daemon's delete is rolled back once its backend notices it is
            # gone (it waits at the gate until then); the row is still there.
            await gate.execute("SELECT pg_advisory_unlock($1)", GATE)
            await eventually(
                lambda: conn.fetchval(
                    "SELECT count(*) = 0 FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend' AND pid <> $1",
                    gate.get_server_pid(),
                ),
                within=10,
            )
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
            await conn.execute("DROP TRIGGER test_outbox_gate ON outbox")

            restarted = time.monotonic()
            await second.start()
            got = await alerts.wait_count(RAISED, 2, within=60)
            republished = time.monotonic() - restarted
            await eventually(lambda: conn.fetchval("SELECT count(*) = 0 FROM outbox"), within=10)
            assert got[0].value == got[1].value  # the same event, byte for byte
            alert_id = await conn.fetchval("SELECT alert_id FROM alerts")
            assert ids_by_alert(alerts.messages) == {(RAISED, alert_id): 2}
            seen = replay(alerts.messages)
            assert seen.violations == [] and seen.duplicates == 1
            assert await lost_events(conn, seen) == []
            print(f"kill -9 before the delete: republished {republished:.1f} s after restart")
    finally:
        await first.close()
        await second.close()
        await gate.close()
        await conn.close()


USERS = 150


async def test_broker_stopping_mid_batch_loses_nothing_and_keeps_order(
    topics, make_settings, start_app, database
):
    """A backlog of three events per session (raised, superseded, raised again) is
    published in waves; the broker is frozen (SIGSTOP) as soon as the relay holds the
    batch, so the batch fails part way; thawed, everything is published again."""
    own = start_broker()
    assert own.process is not None
    conn = await asyncpg.connect(database)
    try:
        await ensure_topics(
            {"bootstrap_servers": own.bootstrap_servers},
            [topics.session_events, topics.directory_events, topics.alerts, topics.dead_letter],
            partitions=4,
            replication=1,
        )
        kafka = {
            "bootstrap_servers": own.bootstrap_servers,
            "request_timeout_ms": 2000,
            "rebalance_timeout_ms": 1000,
        }
        running = await start_app(make_settings(kafka=kafka))
        app = running.app
        users = [f"u{i}" for i in range(USERS)]
        async with (
            Producer(own.bootstrap_servers) as p,
            TopicWatcher(own.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(
                topics.directory_events, directory(users={u: (True, "hq") for u in users}), "acme"
            )
            async with app.services.relay.paused():
                for u in users:
                    await p.send(topics.session_events, login("acme", u, f"s-{u}", HOME_IP), u)
                await eventually(lambda: sample(app, "e911_alerts_raised_total") == USERS, 30)
                for u in users:
                    await p.send(
                        topics.session_events, ip_changed("acme", u, f"s-{u}", ELSEWHERE_IP), u
                    )
                await eventually(lambda: sample(app, "e911_alerts_raised_total") == 2 * USERS, 30)
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 3 * USERS

                async def freeze_when_held() -> float:
                    """SIGSTOP the broker once the relay holds its batch."""
                    while True:
                        held = await conn.fetchval(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database()"
                            " AND state = 'idle in transaction' AND query LIKE '%outbox%'"
                            " AND query NOT LIKE '%INSERT INTO outbox%'"
                        )
                        if held:
                            os.kill(own.process.pid, signal.SIGSTOP)
                            return time.monotonic()
                        await asyncio.sleep(0.002)

                freezing = asyncio.create_task(freeze_when_held())
                await asyncio.sleep(0)
            frozen_at = await asyncio.wait_for(freezing, 10)
            await eventually(
                lambda: sample(app, "e911_kafka_errors_total", operation="relay") >= 1, 30
            )
            noticed = time.monotonic() - frozen_at
            os.kill(own.process.pid, signal.SIGCONT)
            thawed_at = time.monotonic()

            async def settled() -> bool:
                pending = await conn.fetchval("SELECT count(*) FROM outbox")
                return pending == 0 and replay(alerts.messages).events == 3 * USERS

            await eventually(settled, within=60)
            recovered = time.monotonic() - thawed_at
            seen = replay(alerts.messages)
            assert seen.violations == [], seen.violations[:5]
            assert await lost_events(conn, seen) == []
            ids_by_alert(alerts.messages)  # every copy carries the alert's own id
            # Part way: the events acknowledged before the freeze were published again.
            assert 0 < seen.duplicates < 3 * USERS, seen.duplicates
            print(
                f"broker frozen mid-batch: noticed in {noticed:.1f} s, all published "
                f"{recovered:.1f} s after the thaw, {seen.duplicates} of {3 * USERS} events "
                "acknowledged before the freeze were published again"
            )
        assert await running.stop() == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(own.process.pid, signal.SIGCONT)
        own.stop()
        await conn.close()
