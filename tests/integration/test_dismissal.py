"""Dismissal on the real broker and database (docs/spec.md#what-a-check-decides: "When the user
dismisses an
alert ... it is resolved with reason ``dismissed``, and the same fingerprint is not
raised again for that session for ``dismiss_snooze``; a different fingerprint is
raised as usual").

Directory (tests.support.directory): account toggle on; hq = 203.0.113.0/24,
home = 198.51.100.0/24 (given as a range), lab has no IP groups; users at hq. A user
at hq on HOME_IP is a mismatch recommending home; on ELSEWHERE a mismatch recommending
all locations (another fingerprint).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any

import asyncpg

from tests.support import (
    Producer,
    TopicWatcher,
    directory,
    dismissed,
    eventually,
    ip_changed,
    login,
    now,
    sample,
    wait_consumed,
)

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
ELSEWHERE = "192.0.2.77"
RAISED = "e911.alert.raised"
RESOLVED = "e911.alert.resolved"
DISMISSED = "e911.alert.dismissed"


@contextlib.asynccontextmanager
async def _dismissed_alert(broker, topics):
    """u1 at home while assigned to hq, the alert raised and then dismissed: yields
    (producer, alert watcher, the raised alert's data, the resolved event's data)."""
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), key="acme")
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
        first = (await alerts.wait_count(RAISED, 1))[0].data
        await p.send(
            topics.session_events, dismissed("acme", "u1", "s1", first["alert_id"]), key="u1"
        )
        resolved = (await alerts.wait_count(RESOLVED, 1))[0].data
        yield p, alerts, first, resolved


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


async def _mismatch_checks_after(app: Any, n: int) -> None:
    """Until ``n`` more checks found the mismatch (each one a chance to raise)."""
    before = sample(app, "e911_checks_total", outcome="mismatch")
    await eventually(lambda: sample(app, "e911_checks_total", outcome="mismatch") >= before + n)


async def _open_alert_ids(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT alert_id FROM alerts WHERE resolved_at IS NULL")
    finally:
        await conn.close()
    return {r["alert_id"] for r in rows}


async def test_dismissal_resolves_and_the_snooze_survives_a_restart(
    broker, topics, make_settings: Callable[..., Any], start_app, database
) -> None:
    settings = make_settings()  # dismiss_snooze: the default hour
    running = await start_app(settings)
    # (a) the dismissal resolves that very alert, with reason "dismissed".
    async with _dismissed_alert(broker, topics) as (_p, alerts, first, resolved):
        assert resolved["alert_id"] == first["alert_id"]
        assert resolved["reason"] == "dismissed"
        assert resolved["session_id"] == "s1"
        assert sample(running.app, "e911_alerts_resolved_total", reason="dismissed") == 1
        assert sample(running.app, "e911_dismissals_ignored_total") == 0

        # (b) checks keep finding the same mismatch, and do not raise it again.
        await _mismatch_checks_after(running.app, 3)
        assert sample(running.app, "e911_alerts_raised_total") == 1
        assert len(alerts.of_type(RAISED)) == 1
        assert await _open_alert_ids(database) == set()

        # ... and the snooze lives in the database: a new instance honours it too.
        assert await running.stop() == 0
        again = await start_app(settings)
        await _mismatch_checks_after(again.app, 3)
        assert sample(again.app, "e911_alerts_raised_total") == 0
        assert sample(again.app, "e911_alerts_resolved_total", reason="dismissed") == 0
        assert len(alerts.of_type(RAISED)) == 1
        assert len(alerts.of_type(RESOLVED)) == 1
        assert await _open_alert_ids(database) == set()
    assert await again.stop() == 0


async def test_same_mismatch_is_raised_again_once_the_snooze_expired(
    broker, topics, make_settings: Callable[..., Any], start_app
) -> None:
    snooze = 4.0
    running = await start_app(make_settings(checks={"dismiss_snooze_seconds": snooze}))
    app = running.app
    async with _dismissed_alert(broker, topics) as (_p, alerts, first, resolved):
        assert resolved["reason"] == "dismissed"
        raised = await alerts.wait_count(RAISED, 2, within=snooze + 10)
        second = raised[1].data
        assert second["alert_id"] != first["alert_id"]
        assert second["session_id"] == "s1"
        # The same mismatch (same fingerprint): same assigned location, same advice.
        assert second["assigned_location"] == first["assigned_location"]
        assert second["recommendation"] == first["recommendation"]
        # Not before the snooze ran out, although checks ran every 1.5 s meanwhile...
        waited = (_time(second["checked_at"]) - _time(resolved["resolved_at"])).total_seconds()
        assert waited >= snooze, waited
        # ... and at the first check after it (interval 1.5 s, ticks of 0.2 s).
        assert waited <= snooze + 1.5 + 1.5, waited
        assert sample(app, "e911_checks_total", outcome="mismatch") >= 4
        assert sample(app, "e911_alerts_raised_total") == 2
    assert await running.stop() == 0


async def test_a_different_fingerprint_is_raised_during_the_snooze(
    broker, topics, make_settings: Callable[..., Any], start_app
) -> None:
    running = await start_app(make_settings())
    app = running.app
    async with _dismissed_alert(broker, topics) as (p, alerts, first, _):
        # Off every known network: all_locations is another fingerprint, raised as usual.
        moved_at = now()
        await p.send(
            topics.session_events, ip_changed("acme", "u1", "s1", ELSEWHERE, moved_at), key="u1"
        )
        second = (await alerts.wait_count(RAISED, 2, within=10))[1].data
        assert second["alert_id"] != first["alert_id"]
        assert second["ip"] == ELSEWHERE
        assert second["recommendation"]["kind"] == "all_locations"
        # At the next check (interval 1.5 s), not held back by the snooze.
        delay = (_time(second["checked_at"]) - moved_at).total_seconds()
        assert delay <= 1.5 + 1.5, delay

        # Back on the home network: the dismissed fingerprint is still snoozed, so the
        # all_locations alert is superseded and nothing new is raised in its place.
        await p.send(topics.session_events, ip_changed("acme", "u1", "s1", HOME_IP), key="u1")
        resolved = await alerts.wait_count(RESOLVED, 2)
        assert resolved[1].data["alert_id"] == second["alert_id"]
        assert resolved[1].data["reason"] == "superseded"
        await _mismatch_checks_after(app, 3)
        assert sample(app, "e911_alerts_raised_total") == 2
        assert len(alerts.of_type(RAISED)) == 2
    assert await running.stop() == 0


async def test_dismissals_naming_no_open_alert_change_nothing_and_are_counted(
    broker, topics, make_settings: Callable[..., Any], start_app, database
) -> None:
    running = await start_app(make_settings())
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(
            topics.directory_events,
            directory(users={"u1": (False, "hq"), "u2": (False, "hq")}),
            key="acme",
        )
        await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
        await p.send(topics.session_events, login("acme", "u2", "s2", HOME_IP), key="u2")
        await alerts.wait_count(RAISED, 2)
        a1 = alerts.of_type(RAISED, "s1")[0].data["alert_id"]
        a2 = alerts.of_type(RAISED, "s2")[0].data["alert_id"]

        ignored = [
            dismissed("acme", "u1", "s1", "no-such-alert"),  # wrong id
            dismissed("acme", "u1", "s1", a2),  # the open alert of another session
            dismissed("acme", "u1", "s-unknown", a1),  # a session nobody knows
        ]
        await p.send_all(topics.session_events, ignored, key="u1")
        await wait_consumed(app, topics.session_events, DISMISSED, 3)
        assert sample(app, "e911_dismissals_ignored_total") == 3
        assert await _open_alert_ids(database) == {a1, a2}

        # Dismissed for real, then once more: the second names an alert no longer open.
        await p.send(topics.session_events, dismissed("acme", "u1", "s1", a1), key="u1")
        await p.send(topics.session_events, dismissed("acme", "u1", "s1", a1), key="u1")
        await wait_consumed(app, topics.session_events, DISMISSED, 5)
        assert sample(app, "e911_dismissals_ignored_total") == 4
        assert sample(app, "e911_alerts_resolved_total", reason="dismissed") == 1
        resolved = await alerts.wait_count(RESOLVED, 1)
        assert [(m.data["alert_id"], m.data["reason"]) for m in resolved] == [(a1, "dismissed")]
        assert await _open_alert_ids(database) == {a2}

        # Nothing more is published for them: once the outbox is drained and further
        # checks ran, s2's alert is still the open one and s1 got no second resolution.
        await _mismatch_checks_after(app, 4)
        await eventually(lambda: _outbox_empty(database))
        assert alerts.of_type(RESOLVED, "s2") == []
        assert len(alerts.of_type(RESOLVED, "s1")) == 1
        assert await _open_alert_ids(database) == {a2}
        assert sample(app, "e911_dismissals_ignored_total") == 4
    assert await running.stop() == 0


async def test_a_dismissal_for_another_users_session_is_ignored(
    broker, topics, make_settings: Callable[..., Any], start_app, database
) -> None:
    """A dismissal names its user and session: u1 cannot dismiss u2's alert by naming
    u2's session, just as u1's other session events never touch a session of u2."""
    running = await start_app(make_settings())
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(
            topics.directory_events,
            directory(users={"u1": (False, "hq"), "u2": (False, "hq")}),
            key="acme",
        )
        await p.send(topics.session_events, login("acme", "u1", "s1", HQ_IP), key="u1")
        await p.send(topics.session_events, login("acme", "u2", "s2", HOME_IP), key="u2")
        a2 = (await alerts.wait_count(RAISED, 1, session_id="s2"))[0].data["alert_id"]
        await p.send(topics.session_events, dismissed("acme", "u1", "s2", a2), key="u1")
        await wait_consumed(app, topics.session_events, DISMISSED, 1)
        assert sample(app, "e911_dismissals_ignored_total") == 1
        assert sample(app, "e911_alerts_resolved_total", reason="dismissed") == 0
        assert await _open_alert_ids(database) == {a2}
        assert alerts.of_type(RESOLVED) == []
    assert await running.stop() == 0


async def _outbox_empty(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        pending: int = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await conn.close()
    return pending == 0
