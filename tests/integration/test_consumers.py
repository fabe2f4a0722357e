"""Each consumer path against the real broker and database, including bad input."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json

import asyncpg
import pytest

from tests.support import (
    Producer,
    TopicWatcher,
    ce,
    directory,
    eventually,
    ip_changed,
    login,
    logout,
    sample,
    wait_consumed,
)


async def _fetch(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_session_events_become_rows_with_offsets(
    broker, topics, make_settings, start_app, database
):
    settings = make_settings()
    running = await start_app(settings)
    t_login = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    async with Producer(broker.bootstrap_servers) as p:
        await p.send(topics.session_events, login("a", "u1", "s1", "203.0.113.5", t_login), "u1")
        # ip_changed for an unknown session starts one at the event's time.
        t2 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        await p.send(topics.session_events, ip_changed("a", "u2", "s2", "2001:db8::1", t2), "u2")
        await p.send(topics.session_events, login("a", "u3", "s3", "::ffff:192.0.2.4"), "u3")
        await p.send(topics.session_events, logout("a", "u3", "s3"), "u3")
        await wait_consumed(running.app, topics.session_events, "e911.session.logout", 1)
    rows = {
        r["session_id"]: r
        for r in await _fetch(
            database,
            "SELECT session_id, host(ip) AS ip, logged_in_at, kafka_partition, ended_at "
            "FROM sessions",
        )
    }
    assert rows["s1"]["logged_in_at"] == t_login
    assert rows["s1"]["ip"] == "203.0.113.5"
    assert rows["s2"]["logged_in_at"] == t2
    assert rows["s2"]["ip"] == "2001:db8::1"
    assert rows["s3"]["ip"] == "192.0.2.4"  # IPv4-mapped IPv6 is the IPv4 host
    assert rows["s3"]["ended_at"] is not None
    assert rows["s1"]["ended_at"] is None
    assert 0 <= rows["s1"]["kafka_partition"] < 4
    offsets = await _fetch(
        database,
        "SELECT partition, next_offset FROM consumer_offsets WHERE topic = $1",
        topics.session_events,
    )
    assert sum(r["next_offset"] for r in offsets) == 4
    assert running.app.sessions_scheduled() == 2
    assert sample(running.app, "e911_sessions_active") == 2
    assert await running.stop() == 0


async def test_directory_events_are_projected(broker, topics, make_settings, start_app, database):
    running = await start_app(make_settings())
    async with Producer(broker.bootstrap_servers) as p:
        await p.send_all(topics.directory_events, directory(users={"u1": (True, "hq")}), "acme")
        await p.send(
            topics.directory_events,
            ce(
                "e911.ip_group.upserted",
                {
                    "account_id": "acme",
                    "ip_group_id": "mixed",
                    "name": "Mixed",
                    "location_id": None,
                    "addresses": ["192.0.2.10-192.0.2.20", "2001:db8::/48", "10.1.2.3"],
                },
            ),
            "acme",
        )
        await p.send(
            topics.directory_events,
            ce(
                "e911.location.upserted",
                {
                    "account_id": "acme",
                    "location_id": "geo",
                    "name": "Geo",
                    "address": {
                        "street": "1 A St",
                        "city": "B",
                        "region": "CA",
                        "postal_code": "90001",
                        "country": "US",
                    },
                    "coordinates": {"lat": 34.05, "lon": -118.25},
                },
            ),
            "acme",
        )
        await p.send(
            topics.directory_events,
            ce(
                "e911.user.location_changed",
                {
                    "account_id": "acme",
                    "user_id": "u1",
                    "e911_location_id": "home",
                    "changed_via": "app",
                },
            ),
            "acme",
        )
        await wait_consumed(running.app, topics.directory_events, "e911.user.location_changed", 1)
    nets = await _fetch(
        database,
        "SELECT text(network) AS n FROM ip_group_networks WHERE ip_group_id = 'mixed'",
    )
    stored = {ipaddress.ip_network(r["n"]) for r in nets}
    covered = {ip for n in stored if n.version == 4 and n.prefixlen > 24 for ip in n}
    expected = {ipaddress.ip_address(f"192.0.2.{i}") for i in range(10, 21)}
    assert covered == expected | {ipaddress.ip_address("10.1.2.3")}
    assert ipaddress.ip_network("2001:db8::/48") in stored
    user = (await _fetch(database, "SELECT * FROM users WHERE user_id = 'u1'"))[0]
    assert user["e911_location_id"] == "home"
    assert user["e911_recommendations"] is True
    loc = (await _fetch(database, "SELECT * FROM locations WHERE location_id = 'geo'"))[0]
    assert json.loads(loc["address"])["postal_code"] == "90001"
    assert (loc["lat"], loc["lon"]) == (34.05, -118.25)

    async with Producer(broker.bootstrap_servers) as p:
        # Upsert replaces the whole group: only the new address is left.
        await p.send(
            topics.directory_events,
            ce(
                "e911.ip_group.upserted",
                {
                    "account_id": "acme",
                    "ip_group_id": "mixed",
                    "name": "Mixed",
                    "location_id": "lab",
                    "addresses": ["172.16.0.0/12"],
                },
            ),
            "acme",
        )
        await p.send(
            topics.directory_events,
            ce("e911.user.deleted", {"account_id": "acme", "user_id": "u1"}),
            "acme",
        )
        await p.send(
            topics.directory_events, ce("e911.account.deleted", {"account_id": "other"}), "other"
        )
        await wait_consumed(running.app, topics.directory_events, "e911.account.deleted", 1)
    nets = await _fetch(
        database, "SELECT text(network) AS n FROM ip_group_networks WHERE ip_group_id = 'mixed'"
    )
    assert [r["n"] for r in nets] == ["172.16.0.0/12"]
    assert await _fetch(database, "SELECT * FROM users WHERE user_id = 'u1'") == []
    async with Producer(broker.bootstrap_servers) as p:
        await p.send(
            topics.directory_events, ce("e911.account.deleted", {"account_id": "acme"}), "acme"
        )
        await wait_consumed(running.app, topics.directory_events, "e911.account.deleted", 2)
    for table in ("accounts", "users", "locations", "ip_groups", "ip_group_networks"):
        assert await _fetch(database, f"SELECT 1 FROM {table} WHERE account_id = 'acme'") == []  # noqa: S608
    assert await running.stop() == 0


HOSTILE = [
    (b"", "invalid_json"),
    (b"{not json", "invalid_json"),
    (b"\xff\xfe\x00garbage", "invalid_json"),
    (b"[1, 2, 3]", "not_cloudevent"),
    (b'{"hello": "world"}', "not_cloudevent"),
    (b"[" * 5000 + b"]" * 5000, "not_cloudevent"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "invalid_json"),
    (ce("e911.session.teleport", {"x": 1}, dt.datetime.now(dt.UTC)), "unknown_type"),
    (ce("e911.session.login", {"account_id": "a"}, dt.datetime.now(dt.UTC)), "invalid_data"),
    (
        ce(
            "e911.session.login",
            {"account_id": 7, "user_id": ["u"], "session_id": {"s": 1}, "ip": 3},
            dt.datetime.now(dt.UTC),
        ),
        "invalid_data",
    ),
    (
        ce(
            "e911.session.login",
            {"account_id": "a" * 10_000, "user_id": "u", "session_id": "s", "ip": "1.2.3.4"},
            dt.datetime.now(dt.UTC),
        ),
        "invalid_data",
    ),
    (login("a", "u", "s", "999.1.1.1"), "invalid_ip"),
    (login("a", "u", "s", "fe80::1%eth0"), "invalid_ip"),
    (login("a", "u", "s", "010.0.0.1"), "invalid_ip"),
    (
        login("a", "u", "s", "1.2.3.4", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)),
        "invalid_time",
    ),
    (
        ce(
            "e911.session.login",
            {"account_id": "a", "user_id": "u", "session_id": "s", "ip": "1.2.3.4"},
        ),
        "invalid_time",
    ),
    (
        json.dumps(
            {
                "specversion": "1.0",
                "id": "x",
                "source": "s",
                "type": "e911.session.login",
                "time": "2026-11-26T09:00:00Z",
                "data": {
                    "account_id": "a",
                    "user_id": "u",
                    "session_id": "s",
                    "ip": "1.2.3.4",
                    "junk": "x" * 70_000,
                },
            }
        ).encode(),
        "oversized",
    ),
]


DIRECTORY_HOSTILE = [
    (b"\x00\x01not json", "invalid_json"),
    (b'"just a string"', "not_cloudevent"),
    (ce("e911.account.exploded", {"account_id": "acme"}), "unknown_type"),
    (
        ce(
            "e911.user.upserted",
            {"account_id": "acme", "user_id": "u9", "e911_recommendations": "yes"},
        ),
        "invalid_data",
    ),
    (
        ce(
            "e911.location.upserted",
            {
                "account_id": "acme",
                "location_id": "x",
                "name": "X",
                "address": {"street": "s", "city": "c", "country": "US"},
                "coordinates": {"lat": 123.0, "lon": 0},
            },
        ),
        "invalid_data",
    ),
    (
        ce(
            "e911.ip_group.upserted",
            {
                "account_id": "acme",
                "ip_group_id": "big",
                "name": "n",
                "location_id": None,
                "addresses": [f"10.{i // 256}.{i % 256}.0/24" for i in range(6000)],
            },
        ),
        "oversized",
    ),
]


async def test_bad_input_goes_to_dead_letter_and_never_blocks(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings())
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.dead_letter) as dlq,
    ):
        # Where each bad message really landed: its dead letter must name exactly that.
        origin = {}
        for value, _ in HOSTILE:
            meta = await p.send(topics.session_events, value, key="u1", headers=[("trace", b"t-1")])
            origin[value] = (topics.session_events, meta.partition, meta.offset)
        null = await p.send(topics.session_events, None, key="u1")  # a tombstone-like null
        bad_group = ce(
            "e911.ip_group.upserted",
            {
                "account_id": "acme",
                "ip_group_id": "g",
                "name": "n",
                "location_id": None,
                "addresses": ["10.0.0.300"],
            },
        )
        meta = await p.send(topics.directory_events, bad_group, key="acme")
        origin[bad_group] = (topics.directory_events, meta.partition, meta.offset)
        for value, _ in DIRECTORY_HOSTILE:
            meta = await p.send(topics.directory_events, value, key="acme")
            origin[value] = (topics.directory_events, meta.partition, meta.offset)
        # Good events after the bad ones, on the same partitions, are still processed.
        await p.send(topics.session_events, login("a", "u1", "good", "203.0.113.1"), "u1")
        await p.send_all(topics.directory_events, directory(), "acme")
        received = await dlq.wait_for(
            lambda m: len(m) >= len(HOSTILE) + len(DIRECTORY_HOSTILE) + 2, within=20
        )
        await eventually(lambda: "good" in app.schedule)
    assert len(origin) == len(HOSTILE) + len(DIRECTORY_HOSTILE) + 1  # no value twice
    by_value = {}
    for m in received:
        by_value.setdefault(m.value, m)
    # Every dead letter names the topic, partition and offset its message was produced at.
    null_origin = (topics.session_events, null.partition, null.offset)
    named = set()
    for m in received:
        where = (
            m.headers["e911.dlq.topic"].decode(),
            int(m.headers["e911.dlq.partition"]),
            int(m.headers["e911.dlq.offset"]),
        )
        expected = null_origin if m.value is None else origin[m.value]
        assert where == expected, ((m.value or b"")[:60], m.headers)
        named.add(where)
    assert named == {*origin.values(), null_origin}
    for value, reason in HOSTILE:
        m = by_value[value]  # copied unchanged
        assert m.headers["e911.dlq.reason"].decode() == reason, (value[:60], m.headers)
        assert m.headers["e911.dlq.topic"].decode() == topics.session_events
        assert m.headers["trace"] == b"t-1"  # original headers kept
        assert m.key == b"u1"
    for value, reason in DIRECTORY_HOSTILE:
        m = by_value[value]
        assert m.headers["e911.dlq.reason"].decode() == reason, (value[:60], m.headers)
        assert m.headers["e911.dlq.topic"].decode() == topics.directory_events
        assert m.key == b"acme"
    group_dl = by_value[bad_group]
    assert group_dl.headers["e911.dlq.reason"] == b"invalid_ip"
    assert group_dl.headers["e911.dlq.topic"].decode() == topics.directory_events
    assert sample(app, "e911_events_invalid_total", reason="invalid_json") == 5
    assert sample(app, "e911_events_invalid_total", reason="not_cloudevent") == 5  # + null
    assert sample(app, "e911_events_invalid_total", reason="invalid_ip") == 4
    assert sample(app, "e911_events_invalid_total", reason="oversized") == 2
    ips = await _fetch(database, "SELECT 1 FROM ip_groups WHERE ip_group_id IN ('g', 'big')")
    assert ips == []
    assert await _fetch(database, "SELECT 1 FROM users WHERE user_id = 'u9'") == []
    # The good directory events after the bad ones are applied too.

    async def locations_loaded() -> bool:
        rows = await _fetch(database, "SELECT 1 FROM locations WHERE account_id = 'acme'")
        return len(rows) == 3

    await eventually(locations_loaded, within=10)
    assert await running.stop() == 0


@pytest.mark.parametrize("replays", [2])
async def test_replaying_the_topic_raises_nothing_twice(
    broker, topics, make_settings, start_app, database, replays
):
    """Events are idempotent: the same events again (and a reset of the stored offsets,
    i.e. a replay from the start) give the same state and no second alert."""
    settings = make_settings()
    running = await start_app(settings)
    t0 = dt.datetime.now(dt.UTC)
    session_events = [
        login("acme", "u1", "s1", "198.51.100.7", t0),
        ip_changed("acme", "u1", "s1", "198.51.100.8", t0 + dt.timedelta(milliseconds=10)),
    ]
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
    ):
        await p.send_all(topics.directory_events, directory(), "acme")
        for _ in range(replays):
            await p.send_all(topics.session_events, session_events, "u1")
        await alerts.wait_count("e911.alert.raised", 1)
        assert await running.stop() == 0
        conn = await asyncpg.connect(database)
        try:
            await conn.execute("DELETE FROM consumer_offsets")
        finally:
            await conn.close()
        running = await start_app(settings)
        checks = sample(running.app, "e911_checks_total", outcome="mismatch")
        await eventually(
            lambda: sample(running.app, "e911_checks_total", outcome="mismatch") >= checks + 3
        )
        await wait_consumed(running.app, topics.session_events, "e911.session.login", replays)
    assert len(alerts.of_type("e911.alert.raised")) == 1
    assert alerts.of_type("e911.alert.resolved") == []
    rows = await _fetch(database, "SELECT host(ip) AS ip FROM sessions")
    assert [r["ip"] for r in rows] == ["198.51.100.8"]
    assert await running.stop() == 0


async def test_event_refused_by_the_database_is_dead_lettered_not_blocking(
    broker, topics, make_settings, start_app, database
):
    """A decodable event the database refuses for good (here: a constraint another
    team added) is found, dead-lettered as `rejected`, and the rest of the batch lands."""
    running = await start_app(make_settings())
    app = running.app
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "ALTER TABLE sessions ADD CONSTRAINT no_poison CHECK (session_id <> 'poison')"
        )
    finally:
        await conn.close()
    async with (
        Producer(broker.bootstrap_servers) as p,
        TopicWatcher(broker.bootstrap_servers, topics.dead_letter) as dlq,
    ):
        sent = {
            sid: await p.send(topics.session_events, login("a", "u1", sid, "192.0.2.1"), "u1")
            for sid in ("good-1", "poison", "good-2")
        }
        dead = await dlq.wait_for(lambda m: len(m) >= 1)
        await eventually(lambda: "good-1" in app.schedule and "good-2" in app.schedule)
        # The dead letter is acknowledged, and the good events applied, before the batch's
        # offsets are stored and its events counted: wait for the count, not the copies.
        await eventually(lambda: sample(app, "e911_events_invalid_total", reason="rejected") > 0)
    assert dead[0].headers["e911.dlq.reason"] == b"rejected"
    assert b"no_poison" in dead[0].headers["e911.dlq.detail"]
    assert json.loads(dead[0].value)["data"]["session_id"] == "poison"
    headers = dead[0].headers
    assert headers["e911.dlq.topic"].decode() == topics.session_events
    assert int(headers["e911.dlq.partition"]) == sent["poison"].partition
    assert int(headers["e911.dlq.offset"]) == sent["poison"].offset
    assert sample(app, "e911_events_invalid_total", reason="rejected") == 1
    assert not running.task.done()
    rows = await _fetch(database, "SELECT session_id FROM sessions ORDER BY session_id")
    assert [r["session_id"] for r in rows] == ["good-1", "good-2"]
    offsets = await _fetch(
        database,
        "SELECT sum(next_offset) AS n FROM consumer_offsets WHERE topic = $1",
        topics.session_events,
    )
    assert offsets[0]["n"] == 3
    assert await running.stop() == 0
