"""A zombie owner (docs/architecture.md#a-zombie-owner): an instance paused (SIGSTOP)
with a batch in hand for longer than its session timeout, resumed after its
partitions moved on. Its late batch must not undo what the new owner applied after
it, offsets never move backwards, and no alert is raised that the events do not call
for."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import asyncpg

from tests.alert_order import RAISED, ids_by_alert, lost_events, replay
from tests.daemon_process import Daemon, daemon_env
from tests.support import (
    Producer,
    TopicWatcher,
    ce,
    directory,
    eventually,
    ip_changed,
    login,
    sample,
)

HOME_IP = "198.51.100.7"


def user(location: str, user_id: str = "u1") -> bytes:
    return ce(
        "e911.user.upserted",
        {
            "account_id": "acme",
            "user_id": user_id,
            "e911_recommendations": True,
            "e911_location_id": location,
        },
    )


async def activity(conn: asyncpg.Connection) -> str:
    """What the database's sessions are doing, for a failure's message."""
    rows = await conn.fetch(
        "SELECT pid, state, wait_event_type, wait_event, left(query, 80) AS query"
        " FROM pg_stat_activity WHERE datname = current_database()"
    )
    return "\n".join(str(dict(r)) for r in rows)


async def test_a_zombie_owner_resumed_after_its_partitions_moved_changes_nothing(
    broker, topics, make_settings, start_app, database, tmp_path
):
    """u1 (at home, assigned home) is moved to hq and straight back to home. The
    instance that read the move to hq is paused before storing it, and its partitions go
    to another instance, which applies both events. Resumed, the zombie retries its
    batch: applied, it would put u1 back at hq (a wrong E911 location, and an alert);
    fenced by the stored offsets, it changes nothing."""
    settings = make_settings()
    env = daemon_env(broker.bootstrap_servers, topics, database, settings.kafka.group_id)
    zombie = Daemon(env, tmp_path / "zombie.log")
    conn = await asyncpg.connect(database)
    locker = await asyncpg.connect(database)
    backwards: list[str] = []
    sampling = asyncio.Event()

    async def sample_offsets(db: asyncpg.Connection) -> int:
        """Offsets as the database has them, every 20 ms: none may ever go back."""
        high: dict[tuple[str, int], int] = {}
        samples = 0
        while not sampling.is_set():
            for r in await db.fetch("SELECT topic, partition, next_offset FROM consumer_offsets"):
                tp = (r["topic"], r["partition"])
                if r["next_offset"] < high.get(tp, -1):
                    backwards.append(f"{tp}: {high[tp]} -> {r['next_offset']}")
                high[tp] = max(high.get(tp, -1), r["next_offset"])
            samples += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sampling.wait(), 0.02)
        return samples

    sampler_conn = await asyncpg.connect(database)
    sampler = asyncio.create_task(sample_offsets(sampler_conn))
    try:
        await zombie.start()
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(
                topics.directory_events, directory(users={"u1": (True, "home")}), "acme"
            )
            await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), "u1")
            await eventually(
                lambda: conn.fetchval("SELECT count(*) = 1 FROM sessions WHERE session_id = 's1'"),
                within=60,
            )
            # The zombie reads the move to hq; its transaction waits for u1's row.
            hold = locker.transaction()
            await hold.start()
            await locker.execute("SELECT 1 FROM users WHERE user_id = 'u1' FOR UPDATE")
            await p.send(topics.directory_events, user("hq"), "acme")

            async def waiting_pid() -> int | None:
                pid: int | None = await conn.fetchval(
                    "SELECT l.pid FROM pg_locks l WHERE NOT l.granted LIMIT 1"
                )
                return pid

            await eventually(waiting_pid, within=30)
            pid = await waiting_pid()
            zombie.signal(signal.SIGSTOP)
            paused_at = time.monotonic()
            # Its transaction dies under it (as a connection lost while it slept); it
            # retries the batch once it runs again.
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
            await hold.rollback()
            await p.send(topics.directory_events, user("home"), "acme")

            # Past the zombie's session timeout, another instance owns every partition
            # and has applied both moves.
            directory_topic = topics.directory_events
            head = await conn.fetchval(  # what the zombie stored before the move to hq
                "SELECT max(next_offset) FROM consumer_offsets WHERE topic = $1", directory_topic
            )
            heir = await start_app(settings)
            await eventually(lambda: heir.app.ownership.partitions == {0, 1, 2, 3}, within=30)
            try:
                await eventually(
                    lambda: conn.fetchval(
                        "SELECT max(next_offset) = $2 + 2 FROM consumer_offsets WHERE topic = $1",
                        directory_topic,
                        head,
                    ),
                    within=30,
                )
            except TimeoutError:
                raise AssertionError(await activity(conn)) from None
            taken_over = time.monotonic() - paused_at
            assert (
                await conn.fetchval("SELECT e911_location_id FROM users WHERE user_id = 'u1'")
                == "home"
            )

            zombie.signal(signal.SIGCONT)
            resumed_at = time.monotonic()
            # Its batch in hand goes first (a revocation waits for it), then it rejoins:
            # the group settles with both instances.
            await eventually(
                lambda: (
                    heir.app.ownership.loaded
                    and heir.app.ownership.partitions
                    and heir.app.ownership.partitions != {0, 1, 2, 3}
                ),
                within=30,
            )
            settled = time.monotonic() - resumed_at
            # One more directory event, through whoever owns acme's partition now.
            await p.send(topics.directory_events, user("hq", "u2"), "acme")
            await eventually(
                lambda: conn.fetchval("SELECT count(*) = 1 FROM users WHERE user_id = 'u2'"),
                within=30,
            )
            assert (
                await conn.fetchval("SELECT e911_location_id FROM users WHERE user_id = 'u1'")
                == "home"
            ), "the zombie's late batch put u1 back at hq"
            assert zombie.logged("stale_events_skipped")
            assert await conn.fetchval("SELECT count(*) FROM alerts") == 0
            assert alerts.of_type(RAISED) == [] and replay(alerts.messages).violations == []
            print(
                f"zombie: partitions taken over {taken_over:.1f} s after the pause, group "
                f"settled {settled:.1f} s after the resume, late batch fenced"
            )
        zombie.signal(signal.SIGTERM)
        assert await zombie.wait() == 0
        assert await heir.stop() == 0
    finally:
        sampling.set()
        samples = await sampler
        await sampler_conn.close()
        await zombie.close()
        await locker.close()
        await conn.close()
    assert backwards == []
    assert samples > 50


USERS = 300
ELSEWHERE_IP = "192.0.2.7"  # no network: another mismatch (all_locations), superseding


async def test_a_relay_frozen_with_its_batch_in_hand_holds_its_keys_for_a_bounded_time(
    broker, topics, make_settings, start_app, database, tmp_path
):
    """An instance is frozen (SIGSTOP) while its relay holds a batch: the database ends
    its transaction after twice the broker timeout, and the new owner publishes the
    batch's events, in order, while the zombie is still frozen. Resumed, what it
    publishes late is a duplicate."""
    kafka = {"request_timeout_ms": 2000, "rebalance_timeout_ms": 1000}
    settings = make_settings(kafka=kafka, shutdown_timeout_seconds=3.0)
    conn = await asyncpg.connect(database)
    env = daemon_env(
        broker.bootstrap_servers,
        topics,
        database,
        settings.kafka.group_id,
        E911_KAFKA__REQUEST_TIMEOUT_MS="2000",
        E911_KAFKA__REBALANCE_TIMEOUT_MS="1000",
    )
    zombie = Daemon(env, tmp_path / "zombie.log")
    users = [f"u{i}" for i in range(USERS)]
    try:
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            # A backlog of three events per session (raised, superseded, raised), left
            # in the outbox by an instance stopped while its relay was held.
            first = await start_app(settings)
            app = first.app
            directory_users = {u: (True, "hq") for u in users}
            await p.send_all(topics.directory_events, directory(users=directory_users), "acme")
            async with app.services.relay.paused():
                for u in users:
                    await p.send(topics.session_events, login("acme", u, f"s-{u}", HOME_IP), u)
                await eventually(lambda: sample(app, "e911_alerts_raised_total") == USERS, 60)
                for u in users:
                    await p.send(
                        topics.session_events, ip_changed("acme", u, f"s-{u}", ELSEWHERE_IP), u
                    )
                await eventually(lambda: sample(app, "e911_alerts_raised_total") == 2 * USERS, 60)
                app.request_stop()
                await asyncio.wait_for(asyncio.shield(first.task), 15)
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 3 * USERS

            await zombie.start()

            async def relay_holding() -> int | None:
                pid: int | None = await conn.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'idle in transaction' AND query LIKE '%outbox%'"
                    " AND query NOT LIKE '%INSERT INTO outbox%'"
                )
                return pid

            async def freeze_when_holding() -> bool:
                """SIGSTOP the zombie as soon as its relay holds its batch."""
                if await relay_holding() is None:
                    return False
                zombie.signal(signal.SIGSTOP)
                return True

            await eventually(freeze_when_holding, within=60, step=0.002)
            pid = await relay_holding()
            frozen_at = time.monotonic()
            held = await conn.fetchval("SELECT count(*) FROM outbox")
            assert held > 0, "the zombie's relay finished its batch before it was frozen"

            heir = await start_app(settings)

            async def published() -> bool:
                return replay(alerts.messages).events == 3 * USERS

            await eventually(published, within=30)  # the zombie is still frozen
            stall = time.monotonic() - frozen_at
            assert not await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
            ), "the frozen relay's transaction is still open"
            await eventually(lambda: conn.fetchval("SELECT count(*) = 0 FROM outbox"), 30)

            zombie.signal(signal.SIGCONT)
            await eventually(
                lambda: (
                    heir.app.ownership.loaded
                    and heir.app.ownership.partitions
                    and heir.app.ownership.partitions != {0, 1, 2, 3}
                ),
                within=30,
            )
            seen = replay(alerts.messages)
            assert seen.violations == [], seen.violations[:5]
            assert await lost_events(conn, seen) == []
            ids_by_alert(alerts.messages)
            print(
                f"frozen relay: {held} of {3 * USERS} events held, all published "
                f"{stall:.1f} s after the freeze, {seen.duplicates} duplicates"
            )
        zombie.signal(signal.SIGTERM)
        assert await zombie.wait() == 0
        assert await heir.stop() == 0
    finally:
        await zombie.close()
        await conn.close()
