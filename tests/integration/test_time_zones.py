"""All times are UTC whatever the process's TZ and the database's TimeZone
(docs/spec.md#check-schedule): the same inputs give the same decisions, the same
schedule, the same sessions-checked records and the same alert and event ids when the
daemon runs with TZ=America/Chicago against a database whose TimeZone is Asia/Kolkata
as when both are UTC.

Both runs happen in this one test, one after the other, each with its own database
and topics; the login times are the same instants (sent with the +05:30 offset in the
zoned run). Kolkata is UTC+05:30 and Chicago UTC-06:00 (-05:00 in summer): a local
time taken for UTC moves a due time by hours and changes an alert id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg

from e911d.consumers.topics import ensure_topics
from tests.support import Producer, Topics, TopicWatcher, login, now

HOME_IP = "198.51.100.7"  # the home-net group: location home
HQ_IP = "203.0.113.9"  # the hq-net group: location hq
INITIAL_DELAY = 25.0
WAIT = 30.0
CHICAGO = "America/Chicago"
KOLKATA = "Asia/Kolkata"
# u1 and u2 assigned hq; hq = 203.0.113.0/24, home = 198.51.100.0/24.
DIRECTORY = """
INSERT INTO accounts VALUES ('acme', true);
INSERT INTO users VALUES ('acme', 'u1', true, 'hq'), ('acme', 'u2', true, 'hq');
INSERT INTO locations (account_id, location_id, name, address) VALUES
    ('acme', 'hq', 'Headquarters', '{"street": "1 Main St", "country": "US"}'),
    ('acme', 'home', 'Home office', '{"street": "2 Elm St", "country": "US"}');
INSERT INTO ip_groups (account_id, ip_group_id, name, location_id, addresses) VALUES
    ('acme', 'hq-net', 'HQ', 'hq', '{203.0.113.0/24}'),
    ('acme', 'home-net', 'Home', 'home', '{198.51.100.0/24}');
INSERT INTO ip_group_networks VALUES
    ('acme', 'hq-net', '203.0.113.0/24'), ('acme', 'home-net', '198.51.100.0/24');
"""


@contextlib.contextmanager
def process_zone(name: str) -> Iterator[None]:
    """This process's local time zone (what TZ sets for a daemon started with it)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def _utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), text  # every time on the wire is UTC
    return dt.datetime.fromisoformat(text)


async def _run(
    broker: Any,
    start_app: Callable[..., Any],
    make_settings: Callable[..., Any],
    dsn: str,
    zone: str,
    logged_in: dt.datetime,
) -> dict[str, Any]:
    """One deployment on its own database and topics; what it decided and recorded."""
    conn = await asyncpg.connect(dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = '{zone}'")
        # Written before the daemon starts: no directory notice re-evaluates the
        # sessions, so their first check is the schedule's.
        await conn.execute(DIRECTORY)
    finally:
        await conn.close()
    topics = Topics.unique()
    await ensure_topics(
        {"bootstrap_servers": broker.bootstrap_servers},
        [topics.session_events, topics.directory_events, topics.alerts, topics.dead_letter],
        partitions=4,
        replication=1,
    )
    settings = make_settings(
        postgres={"dsn": dsn},
        kafka={"topics": topics.as_settings(), "group_id": f"g{uuid.uuid4().hex[:8]}"},
        checks={"initial_delay_seconds": INITIAL_DELAY, "interval_seconds": 120.0},
    )
    running = await start_app(settings)
    at = logged_in.astimezone(zoneinfo.ZoneInfo(zone))
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send(topics.session_events, login("acme", "u1", "s-u1", HOME_IP, at), "u1")
        await p.send(topics.session_events, login("acme", "u2", "s-u2", HQ_IP, at), "u2")
        raised = (await alerts.wait_count("e911.alert.raised", 1, within=WAIT))[0]
        conn = await asyncpg.connect(dsn)
        try:
            db_zone = await conn.fetchval("SHOW TimeZone")  # as every new connection's
            await conn.execute("UPDATE users SET e911_location_id = 'home' WHERE user_id = 'u1'")
            resolved = (await alerts.wait_count("e911.alert.resolved", 1, within=WAIT))[0]
            checked = await conn.fetch(
                "SELECT session_id, first_checked_at FROM checked_sessions ORDER BY session_id"
            )
            stored = await conn.fetchval(
                "SELECT logged_in_at FROM sessions WHERE session_id = 's-u1'"
            )
        finally:
            await conn.close()
        assert len(alerts.of_type("e911.alert.raised")) == 1  # u2 matches: no alert
    assert await running.stop() == 0
    return {
        "db_zone": db_zone,
        "local_offset": time.localtime().tm_gmtoff,
        "raised": raised,
        "resolved": resolved,
        "checked": [(r["session_id"], r["first_checked_at"]) for r in checked],
        "stored_login": stored,
    }


async def test_same_decisions_schedule_and_ids_in_any_time_zone(
    broker, make_settings, start_app, database, other_database
):
    logged_in = (now() - dt.timedelta(seconds=INITIAL_DELAY - 5)).replace(microsecond=0)
    with process_zone("UTC"):
        utc = await _run(broker, start_app, make_settings, database, "UTC", logged_in)
    with process_zone(CHICAGO):
        zoned = await _run(broker, start_app, make_settings, other_database, KOLKATA, logged_in)

    # The zones really were in force.
    assert (utc["db_zone"], utc["local_offset"]) == ("UTC", 0)
    assert zoned["db_zone"] == KOLKATA
    assert zoned["local_offset"] in (-6 * 3600, -5 * 3600)

    for run in (utc, zoned):
        raised, resolved = run["raised"], run["resolved"]
        # The decision: u1 (assigned hq) at home, told so; then fixed.
        assert raised.data["session_id"] == "s-u1"
        assert raised.data["recommendation"]["locations"] == [
            {"location_id": "home", "name": "Home office", "address_line": "2 Elm St, US"}
        ]
        assert resolved.data["reason"] == "location_updated"
        # The schedule: anchored to the login instant, the first check no earlier
        # than initial_delay after it, and not hours late.
        due = logged_in + dt.timedelta(seconds=INITIAL_DELAY)
        checked_at = _utc(raised.data["checked_at"])
        assert due <= checked_at < due + dt.timedelta(seconds=WAIT), (checked_at, due)
        assert run["stored_login"] == logged_in
        # The sessions-checked record: each session once, on the day of its check.
        assert [sid for sid, _ in run["checked"]] == ["s-u1", "s-u2"]
        for _, first in run["checked"]:
            assert abs(first - checked_at) < dt.timedelta(seconds=WAIT)

    # The same ids: the alert's and both events'.
    assert zoned["raised"].data["alert_id"] == utc["raised"].data["alert_id"]
    assert zoned["resolved"].data["alert_id"] == utc["raised"].data["alert_id"]
    assert zoned["raised"].event["id"] == utc["raised"].event["id"]
    assert zoned["resolved"].event["id"] == utc["resolved"].event["id"]
