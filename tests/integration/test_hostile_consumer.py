"""Thousands of generated hostile messages through the real consumer (docs/spec.md#event-contracts,
#dead-letters).

Nothing crashes, every bad message reaches the dead-letter topic unchanged with its
source and a reason its construction implies, and every good one is applied: sessions
in the ``sessions`` table and the schedule, directory entities in their tables.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import random
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from e911d.daemon.core.events import (
    AccountDeleted,
    AccountUpserted,
    DirectoryEvent,
    DirectoryEventKind,
    InvalidReason,
    IpGroupDeleted,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    SessionEvent,
    SessionEventKind,
    UserDeleted,
    UserLocationChanged,
    UserUpserted,
)
from tests.strategies import (
    DIRECTORY,
    SESSION,
    Bad,
    Good,
    Tagged,
    bad_messages,
    big_messages,
    faulty_binary_messages,
    good_messages,
    missing_categories,
)
from tests.support import (
    Producer,
    Received,
    TopicWatcher,
    binary,
    eventually,
    login,
    sample,
)

GOOD_PER_TOPIC = 180
BAD_PER_TOPIC = 1_060
BIG_PER_TOPIC = 16  # at (good) or beyond (oversized) the 64 KiB limit: a few, they are big
SENTINEL = b"e911-test-sentinel"


def collect(strategy: st.SearchStrategy[Tagged], n: int) -> list[Tagged]:
    """``n`` examples of a strategy, the same ones on every run."""
    out: list[Tagged] = []

    @settings(
        max_examples=n,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(message: Tagged) -> None:
        out.append(message)

    draw()
    return out


def generate(max_bytes: int) -> list[Tagged]:
    messages: list[Tagged] = []
    for topic in (SESSION, DIRECTORY):
        messages += collect(bad_messages(topic, max_bytes), BAD_PER_TOPIC)
        messages += collect(big_messages(topic, max_bytes), BIG_PER_TOPIC)
    # Last: good session times are relative to now and must be consumed within the skew.
    for topic in (SESSION, DIRECTORY):
        messages += collect(good_messages(topic, max_bytes), GOOD_PER_TOPIC)
    random.Random(911).shuffle(messages)
    return messages


def alive(running: Any, condition: Callable[[], bool]) -> Callable[[], bool]:
    """The condition, failing at once (not at the timeout) if the daemon has stopped."""

    def check() -> bool:
        if running.task.done():
            fatal = getattr(running.app, "_fatal", None)
            raise AssertionError(
                f"the daemon stopped (exit {running.task.result()}) on hostile input: {fatal!r}"
            )
        return condition()

    return check


def total(app: Any, name: str, label: str, values: list[str], **fixed: str) -> float:
    return sum(sample(app, name, **{label: v}, **fixed) for v in values)


async def test_thousands_of_hostile_messages_through_the_real_consumer(
    broker, topics, make_settings, start_app, database
):
    settings_ = make_settings()
    # Drawn before the daemon starts: generating blocks the event loop for seconds,
    # which would starve the running daemon (its consumer's heartbeats among others).
    messages = generate(settings_.kafka.max_event_bytes)
    running = await start_app(settings_)
    app = running.app
    topic_name = {SESSION: topics.session_events, DIRECTORY: topics.directory_events}
    good = [m for m in messages if isinstance(m.expect, Good)]
    bad = [m for m in messages if isinstance(m.expect, Bad)]
    assert len(bad) >= 2_000
    assert len(good) >= 300
    assert missing_categories(messages) == set()
    good_kinds = {m.expect.event.kind for m in good if isinstance(m.expect, Good)}
    assert good_kinds == {*SessionEventKind, *DirectoryEventKind}

    async with (
        Producer(broker.bootstrap_servers) as producer,
        TopicWatcher(broker.bootstrap_servers, topics.dead_letter) as dlq,
    ):
        # Where each message really landed: (topic, partition, offset) -> the message.
        landed: dict[tuple[str, int, int], Tagged] = {}
        for start in range(0, len(messages), 200):
            chunk = messages[start : start + 200]
            metas = await asyncio.gather(
                *(producer.send(topic_name[m.topic], m.value, key=m.key) for m in chunk)
            )
            for m, meta in zip(chunk, metas, strict=True):
                landed[(topic_name[m.topic], meta.partition, meta.offset)] = m
        assert len(landed) == len(messages)
        session_types = [k.value for k in SessionEventKind]
        directory_types = [k.value for k in DirectoryEventKind]
        reasons = [r.value for r in InvalidReason]

        def processed() -> float:
            return total(
                app, "e911_events_total", "type", session_types, topic=topics.session_events
            ) + total(
                app, "e911_events_total", "type", directory_types, topic=topics.directory_events
            )

        def invalid() -> float:
            return total(app, "e911_events_invalid_total", "reason", reasons)

        await eventually(
            alive(running, lambda: processed() >= len(good) and invalid() >= len(bad)),
            within=60,
        )
        # Every dead letter is acknowledged before its message is counted, so a sentinel
        # behind them on each partition shows the watcher has seen them all.
        await _sentinels(broker.bootstrap_servers, topics.dead_letter)
        partitions = await _partitions(broker.bootstrap_servers, topics.dead_letter)
        await dlq.wait_for(
            lambda got: len([m for m in got if m.value == SENTINEL]) == partitions, within=30
        )
    dead = [m for m in dlq.messages if m.value != SENTINEL]

    # Exactly the bad ones are dead-lettered, byte for byte, with their key and source.
    sent = collections.Counter((topic_name[m.topic], m.key.encode(), m.value) for m in bad)
    got = collections.Counter((d.headers["e911.dlq.topic"].decode(), d.key, d.value) for d in dead)
    assert got == sent, _diff(sent, got)
    assert len(dead) == len(bad)

    # ... each with a reason its construction implies, and where it came from.
    expected: dict[tuple[str, bytes | None], frozenset[InvalidReason]] = {}
    for m in bad:
        assert isinstance(m.expect, Bad)
        where = (topic_name[m.topic], m.value)
        expected[where] = expected.get(where, m.expect.reasons) & m.expect.reasons
    for letter in dead:
        headers = letter.headers
        reason = headers["e911.dlq.reason"].decode()
        source = headers["e911.dlq.topic"].decode()
        assert reason in expected[(source, letter.value)], _show(letter)
        assert headers["e911.dlq.detail"], _show(letter)
    # ... and names the partition and offset the message was produced at: the very
    # message it copies, and a bad one.
    origins = {_origin(d): d for d in dead}
    assert len(origins) == len(dead)  # each dead letter is a different message
    for where, letter in origins.items():
        source = landed.get(where)
        assert source is not None, (where, _show(letter))
        assert isinstance(source.expect, Bad), (where, _show(letter))
        assert (source.key.encode(), source.value) == (letter.key, letter.value), where
    assert set(origins) == {w for w, m in landed.items() if isinstance(m.expect, Bad)}

    # Counted once each: the metric by reason matches the dead letters.
    by_reason = collections.Counter(d.headers["e911.dlq.reason"].decode() for d in dead)
    for reason in reasons:
        assert sample(app, "e911_events_invalid_total", reason=reason) == by_reason[reason]
    assert invalid() == len(bad)

    # Every good one is applied, and counted once.
    per_type = collections.Counter(
        (topic_name[m.topic], str(m.expect.event.kind)) for m in good if isinstance(m.expect, Good)
    )
    for (topic, type_), n in per_type.items():
        assert sample(app, "e911_events_total", topic=topic, type=type_) == n, type_
    assert processed() == len(good)
    await _check_state(database, app, [m.expect.event for m in good if isinstance(m.expect, Good)])

    assert not running.task.done()
    assert await running.stop() == 0


async def _partitions(bootstrap: str, topic: str) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return len(await producer.partitions_for(topic))
    finally:
        await producer.stop()


async def _sentinels(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition in sorted(await producer.partitions_for(topic)):
            await producer.send_and_wait(topic, SENTINEL, partition=partition)
    finally:
        await producer.stop()


def _origin(m: Received) -> tuple[str, int, int]:
    h = m.headers
    return (
        h["e911.dlq.topic"].decode(),
        int(h["e911.dlq.partition"]),
        int(h["e911.dlq.offset"]),
    )


def _show(m: Received) -> str:
    value = m.value[:200] if m.value is not None else None
    return f"{m.headers.get('e911.dlq.reason')!r} {m.headers.get('e911.dlq.detail')!r} {value!r}"


def _diff(sent: collections.Counter[Any], got: collections.Counter[Any]) -> str:
    missing = list((sent - got).items())[:5]
    extra = list((got - sent).items())[:5]
    short = [((t, k[:40], (v or b"")[:160]), n) for (t, k, v), n in missing]
    more = [((t, (k or b"")[:40], (v or b"")[:160]), n) for (t, k, v), n in extra]
    return f"not dead-lettered: {short}; dead-lettered but good: {more}"


async def _check_state(dsn: str, app: Any, events: list[SessionEvent | DirectoryEvent]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        sessions = {
            r["session_id"]: r
            for r in await conn.fetch(
                "SELECT session_id, account_id, user_id, host(ip) AS ip, logged_in_at, ended_at"
                " FROM sessions"
            )
        }
        accounts = {
            r["account_id"]: r["e911_recommendations"]
            for r in await conn.fetch("SELECT account_id, e911_recommendations FROM accounts")
        }
        users = {
            (r["account_id"], r["user_id"]): r
            for r in await conn.fetch(
                "SELECT account_id, user_id, e911_recommendations, e911_location_id FROM users"
            )
        }
        locations = {
            (r["account_id"], r["location_id"]): r
            for r in await conn.fetch(
                "SELECT account_id, location_id, name, address::text AS address, lat, lon"
                " FROM locations"
            )
        }
        groups = {
            (r["account_id"], r["ip_group_id"]): r
            for r in await conn.fetch(
                "SELECT account_id, ip_group_id, name, location_id, addresses FROM ip_groups"
            )
        }
        networks: dict[tuple[str, str], set[Any]] = collections.defaultdict(set)
        for r in await conn.fetch(
            "SELECT account_id, ip_group_id, text(network) AS network FROM ip_group_networks"
        ):
            networks[(r["account_id"], r["ip_group_id"])].add(ipaddress.ip_network(r["network"]))
    finally:
        await conn.close()

    directory_accounts = {a for a, _ in users} | {a for a, _ in locations} | {a for a, _ in groups}
    for event in events:
        if isinstance(event, SessionEvent):
            sid = event.session_id
            if event.kind is SessionEventKind.ALERT_DISMISSED:
                assert sid not in sessions, sid  # nothing to dismiss: ignored
                continue
            row = sessions[sid]
            assert (row["account_id"], row["user_id"]) == (event.account_id, event.user_id)
            if event.kind is SessionEventKind.LOGOUT:  # an unknown session: a tombstone
                assert row["ended_at"] == event.time, sid
                assert sid not in app.schedule
                continue
            # login, or ip_changed of an unknown session: starts it at the event's time
            assert ipaddress.ip_address(row["ip"]) == event.ip, (sid, row["ip"])
            assert row["logged_in_at"] == event.time, sid
            assert row["ended_at"] is None, sid
            assert sid in app.schedule, sid
            continue
        change = event.change
        a = change.account_id
        match change:
            case AccountUpserted():
                assert accounts[a] is change.e911_recommendations
            case AccountDeleted():
                assert a not in accounts
                assert a not in directory_accounts
            case UserUpserted():
                user = users[(a, change.user_id)]
                assert user["e911_recommendations"] is change.e911_recommendations
                assert user["e911_location_id"] == change.e911_location_id
            case UserLocationChanged():
                user = users[(a, change.user_id)]
                assert user["e911_location_id"] == change.e911_location_id
                assert user["e911_recommendations"] is False  # a user first seen here
            case UserDeleted():
                assert (a, change.user_id) not in users
            case LocationUpserted():
                location = locations[(a, change.location_id)]
                assert location["name"] == change.name
                address = change.address
                assert json.loads(location["address"]) == {
                    "street": address.street,
                    "city": address.city,
                    "country": address.country,
                    "region": address.region,
                    "postal_code": address.postal_code,
                    # building, floor and unit only when given (not null, not empty)
                    **{
                        name: value
                        for name in ("building", "floor", "unit")
                        if (value := getattr(address, name))
                    },
                }
                coords = change.coordinates
                assert location["lat"] == (None if coords is None else coords.lat)
                assert location["lon"] == (None if coords is None else coords.lon)
            case LocationDeleted():
                assert (a, change.location_id) not in locations
            case IpGroupUpserted():
                group = groups[(a, change.ip_group_id)]
                assert group["name"] == change.name
                assert group["location_id"] == change.location_id
                assert list(group["addresses"]) == list(change.addresses)
                assert networks[(a, change.ip_group_id)] == set(change.networks)
            case IpGroupDeleted():
                assert (a, change.ip_group_id) not in groups


# The smallest message the generators found that stops the daemon: invalid UTF-8 in a
# string the data decoder reads (see tests/unit/test_hostile_decoding.py, CRASHERS).
POISON = {
    SESSION: b'{"specversion":"1.0","id":"1","source":"s","type":"e911.session.logout",'
    b'"data":{"account_id":"\xff","user_id":"u1","session_id":"s"}}',
    DIRECTORY: b'{"specversion":"1.0","id":"1","source":"s","type":"e911.account.deleted",'
    b'"data":{"account_id":"\xff"}}',
}


async def test_invalid_utf8_in_a_data_field_is_dead_lettered_and_the_daemon_goes_on(
    broker, topics, make_settings, start_app, database
):
    running = await start_app(make_settings())
    app = running.app
    async with (
        Producer(broker.bootstrap_servers) as producer,
        TopicWatcher(broker.bootstrap_servers, topics.dead_letter) as dlq,
    ):
        sent = {
            SESSION: await producer.send(topics.session_events, POISON[SESSION], key="u1"),
            DIRECTORY: await producer.send(topics.directory_events, POISON[DIRECTORY], key="acme"),
        }
        # Behind them on the same partitions: still processed.
        await producer.send(topics.session_events, login("a", "u1", "after", "192.0.2.1"), "u1")
        await eventually(
            alive(running, lambda: len(dlq.messages) >= 2 and "after" in app.schedule),
            within=20,
        )
    by_topic = {m.headers["e911.dlq.topic"].decode(): m for m in dlq.messages}
    for topic, source in ((SESSION, topics.session_events), (DIRECTORY, topics.directory_events)):
        dead = by_topic[source]
        assert dead.value == POISON[topic]
        assert _origin(dead) == (source, sent[topic].partition, sent[topic].offset)
        assert dead.headers["e911.dlq.reason"] in (b"invalid_json", b"invalid_data")
    assert not running.task.done()
    assert await running.stop() == 0


BINARY_BAD_PER_TOPIC = 24


async def test_hostile_binary_mode_messages_are_dead_lettered_with_headers_intact(
    broker, topics, make_settings, start_app
):
    """Binary content mode through the real consumer: every bad one reaches the dead-letter
    topic with its own headers, byte for byte and in order, before the dead-letter ones;
    a good binary-mode login behind them on the same partition is applied."""
    bad = [  # drawn before the daemon starts, as above
        m
        for topic in (SESSION, DIRECTORY)
        for m in collect(faulty_binary_messages(topic), BINARY_BAD_PER_TOPIC)
        if isinstance(m.expect, Bad)
    ]
    running = await start_app(make_settings())
    app = running.app
    assert len(bad) >= BINARY_BAD_PER_TOPIC
    topic_name = {SESSION: topics.session_events, DIRECTORY: topics.directory_events}
    value, headers = binary(login("acme", "u1", "s-binary", "198.51.100.23"))
    async with (
        Producer(broker.bootstrap_servers) as producer,
        TopicWatcher(broker.bootstrap_servers, topics.dead_letter) as dlq,
    ):
        landed: dict[tuple[str, int, int], Tagged] = {}
        for m in bad:  # one key: one partition, so the good one is behind them all
            meta = await producer.send(topic_name[m.topic], m.value, "k", list(m.headers))
            landed[(topic_name[m.topic], meta.partition, meta.offset)] = m
        await producer.send(topics.session_events, value, "k", headers)
        await dlq.wait_count_all(len(bad), within=30)
        await eventually(
            alive(
                running,
                lambda: (
                    sample(
                        app,
                        "e911_events_total",
                        topic=topics.session_events,
                        type="e911.session.login",
                    )
                    == 1
                ),
            ),
            within=20,
        )
    assert len(dlq.messages) == len(bad)
    for letter in dlq.messages:
        source = landed[_origin(letter)]
        assert isinstance(source.expect, Bad)
        assert letter.value == source.value, _show(letter)
        n = len(source.headers)
        assert letter.header_list[:n] == list(source.headers), (source.category, _show(letter))
        assert [k for k, _ in letter.header_list[n:]] == [
            "e911.dlq.topic",
            "e911.dlq.partition",
            "e911.dlq.offset",
            "e911.dlq.reason",
            "e911.dlq.detail",
        ]
        reason = letter.headers["e911.dlq.reason"].decode()
        assert reason in source.expect.reasons, (source.category, _show(letter))
    assert await running.stop() == 0
