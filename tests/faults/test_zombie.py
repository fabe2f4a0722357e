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

from tests.alert_order import RAISED, replay
from tests.daemon_process import Daemon, daemon_env
from tests.support import Producer, TopicWatcher, ce, directory, eventually, login

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
