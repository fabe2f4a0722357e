"""Per-session order on the alerts topic (docs/spec.md#alerts-topic, Order), across
handovers and relays that run at once (docs/architecture.md#order-on-the-alerts-topic).

The hammer through repeated handovers is a slow fault trial:
tests/faults/test_alert_order_handovers.py.

A relay "holding a batch" is played by a test transaction that locks outbox rows the
way a relay does (``FOR UPDATE``) and never publishes them: exactly what another
instance's relay looks like while it waits for the broker, is paused, or fails.
"""

from __future__ import annotations

import asyncpg

from tests.alert_order import RAISED, RESOLVED, lost_events, replay
from tests.support import (
    Producer,
    TopicWatcher,
    directory,
    eventually,
    ip_changed,
    login,
    sample,
)

HQ_IP = "203.0.113.7"  # the user's assigned location's network: match
HOME_IP = "198.51.100.7"  # another location's network: mismatch, ip_group_match
ELSEWHERE_IP = "192.0.2.7"  # no network: mismatch, all_locations (another fingerprint)


async def test_a_key_waits_while_another_relay_holds_an_older_event(
    broker, topics, make_settings, start_app, database
):
    """s1's alert is raised then resolved while the relay is held; another relay holds the
    raised event. The resolution must wait for it, while other users' events go on."""
    running = await start_app(make_settings())
    app = running.app
    holder = await asyncpg.connect(database)
    try:
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            users = {"u1": (True, "hq"), "u2": (True, "hq")}
            await p.send_all(topics.directory_events, directory(users=users), "acme")
            hold = holder.transaction()
            async with app.services.relay.paused():
                await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), "u1")
                await eventually(lambda: sample(app, "e911_alerts_raised_total") == 1)
                await p.send(topics.session_events, ip_changed("acme", "u1", "s1", HQ_IP), "u1")
                await eventually(
                    lambda: (
                        sample(app, "e911_alerts_resolved_total", reason="location_matched") == 1
                    )
                )
                await hold.start()
                held = await holder.fetch("SELECT id, value FROM outbox ORDER BY id")
                assert [b'"e911.alert.raised"' in r["value"] for r in held] == [True, False]
                # Another relay holds the raised event, not the resolution: this relay may
                # take the resolution's row, and must not publish it.
                await holder.fetch("SELECT id FROM outbox WHERE id = $1 FOR UPDATE", held[0]["id"])
            # A round of the relay after the hold: u2's alert, decided after s1's
            # resolution, is published; s1's resolution is not.
            await p.send(topics.session_events, login("acme", "u2", "s2", HOME_IP), "u2")
            await alerts.wait_count(RAISED, 1, session_id="s2")
            await eventually(lambda: sample(app, "e911_alert_events_published_total") == 1)
            assert await app.services.relay.publish_pending(final=False) == 0
            assert alerts.of_type(RESOLVED, session_id="s1") == []
            assert alerts.of_type(RAISED, session_id="s1") == []
            # The holder fails (its events stay in the outbox): now they go, in order.
            await hold.rollback()
            await alerts.wait_count(RESOLVED, 1, session_id="s1")
            seen = replay(alerts.messages)
            assert seen.violations == []
            assert [m.type for m in alerts.messages if m.data["session_id"] == "s1"] == [
                RAISED,
                RESOLVED,
            ]
            assert await lost_events(holder, seen) == []
    finally:
        await holder.close()
    assert await running.stop() == 0
