"""What an open alert becomes when the directory loses what it was raised against
(docs/spec.md#what-a-check-decides steps 1, 3 and 6), and the gauge that reports accounts without
locations.

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24,
lab has no IP groups. Every user here is assigned hq and logs in from home, so one
alert is open before anything is taken away.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from tests.support import (
    Producer,
    TopicWatcher,
    ce,
    directory,
    eventually,
    http_get,
    login,
    sample,
)

HOME_IP = "198.51.100.7"
LONG = {"initial_delay_seconds": 1.0, "interval_seconds": 120.0}
WAIT = 30.0
GAUGE = "e911_accounts_without_locations"


@contextlib.asynccontextmanager
async def _open_alert(
    broker: Any, topics: Any
) -> AsyncIterator[tuple[Producer, TopicWatcher, dict[str, Any]]]:
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        await p.send(topics.session_events, login("acme", "u1", "s-u1", HOME_IP), "u1")
        raised = await alerts.wait_count("e911.alert.raised", 1, within=WAIT)
        yield p, alerts, raised[0].data


async def _scraped(port: int, name: str) -> float | None:
    """The value of an unlabelled series as Prometheus would read it from /metrics."""
    status, body = await http_get(port, "/metrics")
    assert status == 200
    found = re.search(rf"^{name} (\S+)$", body, re.MULTILINE)
    return None if found is None else float(found.group(1))


async def test_an_open_alert_of_a_deleted_user_is_resolved_user_unknown(
    broker, topics, make_settings, start_app
):
    running = await start_app(make_settings(checks=LONG))
    app = running.app
    async with _open_alert(broker, topics) as (p, alerts, first):
        unknown_before = sample(app, "e911_checks_total", outcome="unknown_user")
        await p.send(
            topics.directory_events,
            ce("e911.user.deleted", {"account_id": "acme", "user_id": "u1"}),
            "acme",
        )
        resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0].data
        assert resolved["alert_id"] == first["alert_id"]
        assert resolved["reason"] == "user_unknown"
        assert sample(app, "e911_alerts_resolved_total", reason="user_unknown") == 1
        assert sample(app, "e911_checks_total", outcome="unknown_user") > unknown_before
        # Nothing is raised for a user the directory no longer knows.
        assert len(alerts.of_type("e911.alert.raised")) == 1
    assert await running.stop() == 0


async def test_an_account_that_loses_every_location_resolves_undetermined_and_is_counted(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings(checks=LONG))
    app = running.app
    port = app.http.port
    async with _open_alert(broker, topics) as (p, alerts, first):
        # Two more accounts without locations: "empty" is on for one of its users (a
        # user's own toggle is enough), "quiet" is off for everyone (not counted).
        for account, user_on in (("empty", True), ("quiet", False)):
            await p.send_all(
                topics.directory_events,
                [
                    ce(
                        "e911.account.upserted",
                        {"account_id": account, "e911_recommendations": False},
                    ),
                    ce(
                        "e911.user.upserted",
                        {
                            "account_id": account,
                            "user_id": "v1",
                            "e911_recommendations": user_on,
                            "e911_location_id": None,
                        },
                    ),
                ],
                account,
            )

        async def gauge_is(value: float) -> bool:
            return (
                sample(app, GAUGE) == value
                and await _scraped(port, GAUGE) == value  # what Prometheus reads
            )

        await eventually(lambda: gauge_is(1), within=WAIT)

        # Another system empties acme's locations in one transaction.
        conn = await asyncpg.connect(database)
        try:
            await conn.execute("DELETE FROM locations WHERE account_id = 'acme'")
        finally:
            await conn.close()
        resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0].data
        assert resolved["alert_id"] == first["alert_id"]
        # Nobody moved and nobody fixed anything: not location_matched, not updated.
        assert resolved["reason"] == "location_undetermined"
        assert sample(app, "e911_checks_total", outcome="no_locations") >= 1
        assert len(alerts.of_type("e911.alert.raised")) == 1
        await eventually(lambda: gauge_is(2), within=WAIT)

        # A location comes back: acme is no longer counted.
        await p.send(
            topics.directory_events,
            ce(
                "e911.location.upserted",
                {
                    "account_id": "acme",
                    "location_id": "hq",
                    "name": "Headquarters",
                    "address": {"street": "1 Main St", "city": "Springfield", "country": "US"},
                },
            ),
            "acme",
        )
        await eventually(lambda: gauge_is(1), within=WAIT)
    assert await running.stop() == 0
