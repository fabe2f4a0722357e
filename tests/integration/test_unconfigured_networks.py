"""The record of networks nobody configured on the real broker and database
(docs/spec.md#networks-nobody-configured): which checked sessions it records, that
each is written once per network and UTC day from either check path, that a failed
write is tried again, and housekeeping's summary, bound and purge.

Directory (tests.support.directory): hq = 203.0.113.0/24, home = 198.51.100.0/24.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

import asyncpg
import pytest

from e911d.daemon.commands.networks.recorded import Query, read_networks
from e911d.daemon.core.network_key import NetworkKey, NetworkKeyKind, bssid_key
from e911d.daemon.core.unlocated import Sighting
from e911d.daemon.store.unconfigured_networks import record_sightings
from tests.support import Producer, ce, directory, eventually, now, sample, wait_consumed

HQ_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
WAIT = 30.0
PREFIX = NetworkKey(NetworkKeyKind.IP_PREFIX, "192.0.2.0/24")
AP = bssid_key("f06e0bc20399")


async def _rows(database: str, query: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database)
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def _sightings(database: str) -> set[tuple[str, str, str, str, str]]:
    rows = await _rows(
        database,
        "SELECT account_id, key_kind, network_key, session_id, user_id "
        "FROM unconfigured_network_sightings WHERE day = (now() AT TIME ZONE 'UTC')::date",
    )
    return {
        (r["account_id"], r["key_kind"], r["network_key"], r["session_id"], r["user_id"])
        for r in rows
    }


def _login(account: str, user: str, session: str, ip: str, **network: Any) -> bytes:
    data: dict[str, Any] = {"account_id": account, "user_id": user, "session_id": session}
    data["ip"] = ip
    if network:
        data["network"] = network
    return ce("e911.session.login", data, now() - dt.timedelta(seconds=30))


@pytest.mark.parametrize("decide_in_memory", [True, False])
async def test_sessions_no_group_located_are_recorded_once_per_network_and_day(
    broker, topics, make_settings, start_app, database, decide_in_memory
):
    running = await start_app(make_settings(checks={"decide_in_memory": decide_in_memory}))
    app = running.app
    users = {u: (True, "hq") for u in ("u1", "u2", "u3", "u4", "u5", "u6")}
    logins = [
        ("acme", "u1", "s1", "192.0.2.77", {}),
        ("acme", "u2", "s2", "192.0.2.99", {}),
        ("acme", "u2", "s3", "192.0.2.5", {}),  # the same user's second session
        ("acme", "u3", "s4", HQ_IP, {}),  # located by hq's network
        ("acme", "u4", "s5", "192.0.2.8", {"bssid": "F0-6E-0B-C2-03-99"}),  # keyed by its AP
        ("acme", "u5", "s6", HOME_IP, {"bssid": "aa:aa:aa:aa:aa:aa"}),  # the IP locates it
        ("acme", "u6", "s8", "100.64.1.1", {}),  # a VPN egress: configured, non-locating
        ("beta", "u9", "s7", "192.0.2.10", {}),  # recommendations off: never matched
    ]
    async with Producer(broker.bootstrap_servers) as p:
        vpn = {"account_id": "acme", "ip_group_id": "vpn", "name": "VPN", "location_id": None}
        vpn |= {"addresses": ["100.64.0.0/10"], "locating": False}
        await p.send_all(
            topics.directory_events,
            [*directory(users=users), ce("e911.ip_group.upserted", vpn)],
            key="acme",
        )
        await p.send_all(
            topics.directory_events,
            directory("beta", account_on=False, users={"u9": (False, "hq")}),
            key="beta",
        )
        await wait_consumed(app, topics.directory_events, "e911.user.upserted", 7)
        for account, user, session, ip, network in logins:
            await p.send(topics.session_events, _login(account, user, session, ip, **network), user)
        expected = {
            ("acme", "ip_prefix", "192.0.2.0/24", "s1", "u1"),
            ("acme", "ip_prefix", "192.0.2.0/24", "s2", "u2"),
            ("acme", "ip_prefix", "192.0.2.0/24", "s3", "u2"),
            ("acme", "bssid", "f06e0bc20399", "s5", "u4"),
        }

        async def recorded() -> bool:
            return await _sightings(database) == expected

        await eventually(recorded, within=WAIT)
        # Several more checks of every session (from memory when on): nothing new.
        await eventually(
            lambda: sample(app, "e911_checks_total", outcome="undetermined") >= 1, within=WAIT
        )
        checks = sample(app, "e911_checks_total", outcome="mismatch")
        await eventually(
            lambda: sample(app, "e911_checks_total", outcome="mismatch") >= checks + 8,
            within=WAIT,
        )
        if decide_in_memory:
            # Recorded today: the unlocated sessions are decided from memory again.
            assert sample(app, "e911_checks_decided_in_memory_total") >= 4
        assert await _sightings(database) == expected
        assert sample(app, "e911_unconfigured_sightings_recorded_total") == 4
    conn = await asyncpg.connect(database)
    try:
        query = Query((), dt.timedelta(days=1), 1, 0.8, dt.timedelta(days=7))
        report = await read_networks(conn, query, dt.datetime.now(dt.UTC))
    finally:
        await conn.close()
    figures = {(n.account_id, n.key): (n.users, n.sessions, n.days) for n in report.networks}
    assert figures == {("acme", PREFIX): (2, 3, 1), ("acme", AP): (1, 1, 1)}
    assert await running.stop() == 0


async def test_a_failed_write_is_retried_through_the_database_path(
    broker, topics, make_settings, start_app, database
):
    """Evidence, not on the alert path: a failed write leaves the session unrecorded
    and the checks go on; memory does not hide the session, so a later check writes it."""
    running = await start_app(make_settings())
    app = running.app
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "ALTER TABLE unconfigured_network_sightings "
            "ADD CONSTRAINT held_back CHECK (session_id <> 's1')"
        )

        def failures() -> float:
            return sample(app, "e911_database_errors_total", operation="unconfigured_networks")

        async with Producer(broker.bootstrap_servers) as p:
            await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
            await p.send(topics.session_events, _login("acme", "u1", "s1", "192.0.2.7"), "u1")
            await eventually(lambda: failures() >= 2, within=WAIT)
            assert await _sightings(database) == set()
            await conn.execute(
                "ALTER TABLE unconfigured_network_sightings DROP CONSTRAINT held_back"
            )

            async def recorded() -> bool:
                return bool(await _sightings(database))

            await eventually(recorded, within=WAIT)
            assert await _sightings(database) == {("acme", "ip_prefix", "192.0.2.0/24", "s1", "u1")}
            # Alerts went on meanwhile: the mismatch was raised once.
            assert sample(app, "e911_alerts_raised_total") == 1
    finally:
        await conn.close()
    assert await running.stop() == 0


async def test_housekeeping_summarises_finished_days_keeps_the_busiest_and_purges(
    make_settings, start_app, database
):
    """Finished days become counts of the busiest networks per account and day (the
    bound), their ids of people are deleted, and counts beyond the retention go."""
    today = dt.datetime.now(dt.UTC).date()
    two_days_ago, five_days_ago = today - dt.timedelta(days=2), today - dt.timedelta(days=5)
    conn = await asyncpg.connect(database)
    try:
        from e911d.daemon.store.db import migrate

        await migrate(conn)
        busy = [Sighting(f"s{i}", "acme", f"u{i}", PREFIX) for i in range(3)]
        second = [Sighting("s9", "acme", "u9", AP), Sighting("s10", "acme", "u10", AP)]
        tail = [Sighting("s11", "acme", "u11", bssid_key("f06e0bc20300"))]
        other = [Sighting("s12", "beta", "u12", bssid_key("f06e0bc20300"))]
        await record_sightings(conn, two_days_ago, busy + second + tail + other)
        await record_sightings(conn, five_days_ago, busy)
        await conn.execute(
            "INSERT INTO unconfigured_networks VALUES ('acme', $1, 'bssid', 'f06e0bc20301', 4, 4)",
            today - dt.timedelta(days=10),
        )
    finally:
        await conn.close()
    retention = {"alert_retention_seconds": 4 * 86_400.0}
    learning = {"unconfigured_networks_per_account_day": 2}
    running = await start_app(make_settings(checks=retention, learning=learning))

    async def summarised() -> bool:
        return not await _rows(database, "SELECT 1 FROM unconfigured_network_sightings")

    await eventually(summarised, within=WAIT)
    await eventually(
        lambda: sample(running.app, "e911_unconfigured_networks_dropped_total") >= 1, within=WAIT
    )
    rows = await _rows(database, "SELECT * FROM unconfigured_networks")
    kept = {(r["account_id"], r["day"], r["network_key"], r["users"], r["sessions"]) for r in rows}
    assert kept == {
        ("acme", two_days_ago, "192.0.2.0/24", 3, 3),
        ("acme", two_days_ago, "f06e0bc20399", 2, 2),
        ("beta", two_days_ago, "f06e0bc20300", 1, 1),
    }
    assert sample(running.app, "e911_unconfigured_networks_dropped_total") == 1
    assert await running.stop() == 0


async def test_the_report_counts_users_per_day_and_sessions_over_the_days(database):
    """A UTC day is the unit: the same session on two days counts twice, users are the
    busiest day's; summarised days and today's sightings read alike."""
    day = dt.date(2026, 11, 30)
    conn = await asyncpg.connect(database)
    try:
        from e911d.daemon.store.db import migrate

        await migrate(conn)
        s1 = Sighting("s1", "acme", "u1", PREFIX)
        await record_sightings(conn, day, [s1, Sighting("s2", "acme", "u2", PREFIX)])
        await record_sightings(conn, day, [s1])  # again: idempotent
        await record_sightings(conn, day + dt.timedelta(days=1), [s1])
        await conn.execute(
            "INSERT INTO unconfigured_networks VALUES ('acme', $1, 'ip_prefix', $2, 5, 6)",
            day - dt.timedelta(days=1),
            PREFIX.value,
        )
        await conn.execute(
            """INSERT INTO locations (account_id, location_id, name, address)
               VALUES ('acme', 'hq', 'HQ', '{}');
               INSERT INTO confirmed_networks VALUES
                 ('acme', 'u1', 'ip_prefix', '192.0.2.0/24', 'hq', now(), now()),
                 ('acme', 'u2', 'ip_prefix', '192.0.2.0/24', 'hq', now(), now()),
                 ('acme', 'u3', 'ip_prefix', '192.0.2.0/24', 'gone', now(), now()),
                 ('acme', 'u3', 'ip_prefix', '198.51.100.0/24', 'hq', now(), now())"""
        )
        at = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)

        async def read(since: dt.timedelta, min_users: int = 1) -> dict[NetworkKey, Any]:
            query = Query(("acme",), since, min_users, 0.8, dt.timedelta(days=7))
            report = await read_networks(conn, query, at)
            return {n.key: n for n in report.networks}

        # 00:30 UTC minus 1 h is the day before: both recorded days.
        [two_days] = (await read(dt.timedelta(hours=1))).values()
        assert (two_days.users, two_days.sessions, two_days.days) == (2, 3, 2)
        assert [(c.location_id, c.name, c.users) for c in two_days.confirmations] == [
            ("hq", "HQ", 2),
            ("gone", None, 1),
        ]
        assert two_days.agreement == pytest.approx(2 / 3)
        [three_days] = (await read(dt.timedelta(days=2))).values()
        assert (three_days.users, three_days.sessions, three_days.days) == (5, 9, 3)
        [today] = (await read(dt.timedelta(minutes=5))).values()
        assert (today.users, today.sessions, today.days) == (1, 1, 1)
        assert await read(dt.timedelta(minutes=5), min_users=2) == {}
        assert ipaddress.ip_network(today.key.value).prefixlen == 24
    finally:
        await conn.close()
