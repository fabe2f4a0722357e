"""Every check whose outcome is "nothing to do" is decided in memory, a session's first
check included; only transitions reach the database path, and a user's change sends
only that user's sessions there.

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24.
The interval is short (1.5 s, ticks of 0.2 s), so each test sees many checks.
"""

from __future__ import annotations

from tests.support import (
    Producer,
    TopicWatcher,
    directory,
    eventually,
    location_changed,
    login,
    now,
    sample,
)

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
WAIT = 30.0


def in_memory(app) -> float:
    return sample(app, "e911_checks_decided_in_memory_total")


def checks(app, outcome: str | None = None) -> float:
    if outcome is not None:
        return sample(app, "e911_checks_total", outcome=outcome)
    return sum(
        sample(app, "e911_checks_total", outcome=o)
        for o in ("match", "mismatch", "undetermined", "disabled", "unknown_user", "no_locations")
    )


def in_database(app) -> float:
    return checks(app) - in_memory(app)


async def _directory(app, p, topics, users) -> None:
    """The directory, heard (its notices) before anyone logs in: a login after that is
    first checked by the tick, after the initial delay, not by a re-evaluation."""
    await p.send_all(topics.directory_events, directory(users=users), "acme")
    await eventually(lambda: sample(app, "e911_directory_notices_total", kind="user") >= 1)


async def test_a_first_check_of_a_matching_session_is_decided_in_memory(
    broker, topics, make_settings, start_app
):
    running = await start_app(make_settings())
    app = running.app
    async with Producer(broker.bootstrap_servers) as p:
        await _directory(app, p, topics, {"u1": (True, "hq")})
        earlier = now()
        await p.send(topics.session_events, login("acme", "u1", "s1", HQ_IP, earlier), "u1")
        await eventually(lambda: checks(app) >= 3, within=WAIT)
    # The first check and every one after it: none in PostgreSQL.
    assert in_database(app) == 0
    assert in_memory(app) == checks(app, "match") >= 3
    assert sample(app, "e911_alerts_raised_total") == 0
    assert await running.stop() == 0


async def test_a_first_check_of_a_mismatched_session_raises_exactly_once(
    broker, topics, make_settings, start_app
):
    running = await start_app(make_settings())
    app = running.app
    async with (
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        Producer(broker.bootstrap_servers) as p,
    ):
        await _directory(app, p, topics, {"u1": (True, "hq")})
        earlier = now()
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP, earlier), "u1")
        raised = (await alerts.wait_count("e911.alert.raised", 1, within=WAIT))[0].data
        assert raised["session_id"] == "s1"
        asked = in_database(app)
        # Then the same mismatch, already alerted, round after round from memory.
        start = in_memory(app)
        await eventually(lambda: in_memory(app) >= start + 4, within=WAIT)
        assert in_database(app) == asked == 1
        assert sample(app, "e911_alerts_raised_total") == 1
    assert await running.stop() == 0


async def test_a_users_change_sends_only_that_users_sessions_to_the_database(
    broker, topics, make_settings, start_app
):
    running = await start_app(make_settings())
    app = running.app
    others = [f"t{i}" for i in range(8)]
    async with (
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        Producer(broker.bootstrap_servers) as p,
    ):
        users = {"u1": (True, "hq"), "u2": (True, "hq")}
        await _directory(app, p, topics, users)
        earlier = now()
        await p.send(topics.session_events, login("acme", "u1", "s1", HQ_IP, earlier), "u1")
        for sid in others:
            await p.send(topics.session_events, login("acme", "u2", sid, HQ_IP, earlier), "u2")
        await eventually(lambda: in_memory(app) >= 2 * (1 + len(others)), within=WAIT)
        assert in_database(app) == 0
        await p.send(
            topics.directory_events,
            location_changed("acme", "u1", "home"),
            "acme",
        )
        raised = (await alerts.wait_count("e911.alert.raised", 1, within=WAIT))[0].data
        assert raised["session_id"] == "s1"
        # Two more rounds of every session: u2's eight sessions stayed in memory
        # throughout (a per-account memory would have sent all nine to PostgreSQL).
        start = in_memory(app)
        await eventually(lambda: in_memory(app) >= start + 2 * (1 + len(others)), within=WAIT)
        assert 1 <= in_database(app) <= 2  # s1: the re-evaluation (and at most one tick)
        assert sample(app, "e911_alerts_raised_total") == 1
    assert await running.stop() == 0
