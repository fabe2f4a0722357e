"""The broker is killed (SIGKILL) mid-stream and restarts with its log, as every real
Kafka does: nothing is lost, no alert is published twice under different ids, and the
daemon reconnects by itself.

The broker is Tansu with its ``s3://`` storage engine against moto's S3 server
(tests/s3_broker.py): the embedded broker's memory log would come back empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from e911d.consumers.topics import ensure_topics
from e911d.daemon.commands.embedded import EmbeddedBroker
from e911d.daemon.core.events import InvalidReason
from tests.ports import held_port
from tests.s3_broker import s3_broker, s3_server
from tests.support import Topics, directory, eventually, http_get, login, sample

USERS = 60
KILL_AFTER = 16  # logins acknowledged before the broker is killed
PACE = 0.1  # seconds between logins


async def _send_until_acked(producer: AIOKafkaProducer, topic: str, value: bytes, key: str) -> None:
    """What a producer of session events does: the same bytes again until the broker
    acknowledges them (a redelivery, which the daemon must take as one event)."""
    while True:
        try:
            await producer.send_and_wait(topic, value, key=key.encode())
            return
        except KafkaError:
            await asyncio.sleep(0.2)


async def _readyz(port: int) -> int:
    with contextlib.suppress(OSError):
        return (await http_get(port, "/readyz"))[0]
    return 0


async def _until_status(port: int, status: int, within: float) -> float:
    """Poll /readyz until it answers ``status``; the monotonic time it did."""

    async def answers() -> bool:
        return await _readyz(port) == status

    await eventually(answers, within=within)
    return time.monotonic()


async def _read_topic(bootstrap: str, topic: str, until: int, within: float) -> list[Any]:
    """Every record of ``topic`` from the beginning, by a fresh reader, until at least
    ``until`` distinct events are there (a redelivery counts once), or the time is up:
    the caller's assertions then say what is missing."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[Any] = []
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while len({json.loads(m.value)["id"] for m in got}) < until:
                    batch = await consumer.getmany(timeout_ms=500)
                    got += [m for records in batch.values() for m in records]
    finally:
        await consumer.stop()
    return got


async def _outbox_empty(database: str) -> bool:
    conn = await asyncpg.connect(database)
    try:
        return bool(await conn.fetchval("SELECT count(*) = 0 FROM outbox"))
    finally:
        await conn.close()


def _alerts(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


@pytest.mark.timeout(240)
async def test_broker_killed_mid_stream_restarts_with_its_log(
    make_settings, start_app, database, tmp_path_factory
):
    logs = Path(tmp_path_factory.mktemp("s3-broker"))
    with held_port() as port, s3_server(logs / "moto.log") as s3:
        broker: EmbeddedBroker = s3_broker(s3, "e911d-log", port, logs / "tansu.log").start()
        try:
            await _trial(broker, s3, make_settings, start_app, database)
        finally:
            broker.stop()


async def _trial(broker, s3, make_settings, start_app, database) -> None:
    bootstrap = broker.bootstrap_servers
    topics = Topics.unique()
    await ensure_topics(
        {"bootstrap_servers": bootstrap},
        [topics.session_events, topics.directory_events, topics.alerts, topics.dead_letter],
        partitions=4,
        replication=1,
    )
    # Requests give up after 3 s, so the relay's publishes fail while the broker is
    # down (its alerts wait in the outbox) instead of waiting the outage out.
    settings = make_settings(
        kafka={
            "bootstrap_servers": bootstrap,
            "topics": topics.as_settings(),
            "request_timeout_ms": 3000,
            "rebalance_timeout_ms": 2000,
        }
    )
    running = await start_app(settings)
    app = running.app
    assert app.http is not None
    http = app.http.port
    users = {f"u{i}": (True, "hq") for i in range(USERS)}  # everyone at hq, on hq's line
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await producer.start()
    try:
        for event in directory(users=users):
            await producer.send_and_wait(topics.directory_events, event, key=b"acme")
        await eventually(
            lambda: (
                sample(
                    app,
                    "e911_events_total",
                    topic=topics.directory_events,
                    type="e911.user.upserted",
                )
                == USERS
            ),
            within=30,
        )
        acked, crashed = asyncio.Event(), asyncio.Event()
        sent: list[str] = []

        async def stream() -> None:
            # Logins from home (198.51.100.0/24): each session raises one alert.
            for i in range(USERS):
                if i == USERS - 20:
                    await crashed.wait()  # the last logins are produced across the crash
                value = login("acme", f"u{i}", f"s{i}", f"198.51.100.{i + 1}")
                await _send_until_acked(producer, topics.session_events, value, f"u{i}")
                sent.append(f"s{i}")
                if len(sent) == KILL_AFTER:
                    acked.set()
                await asyncio.sleep(PACE)

        streaming = asyncio.create_task(stream())
        await acked.wait()
        # Some alerts are on the topic before the crash: the restarted broker must
        # still hold them.
        await eventually(lambda: sample(app, "e911_alert_events_published_total") >= 2, 30)
        before = _alerts(await _read_topic(bootstrap, topics.alerts, 2, 10))
        objects = s3.objects("e911d-log")

        assert not streaming.done()  # mid-stream: logins are still coming
        killed = time.monotonic()
        await asyncio.to_thread(broker.kill)
        crashed.set()
        noticed = await _until_status(http, 503, within=30)
        await eventually(lambda: sample(app, "e911_kafka_up") == 0, within=30)
        gauge = time.monotonic()
        # The outage lasts until a publish has failed: alerts decided meanwhile wait in
        # the outbox, and the logins being produced wait for the broker.
        # (Bounded: a relay that swallowed the failure would never count one.)
        with contextlib.suppress(TimeoutError):
            await eventually(
                lambda: sample(app, "e911_kafka_errors_total", operation="relay") > 0, 20
            )
        waiting = sample(app, "e911_outbox_pending")
        restarted = time.monotonic()
        await asyncio.to_thread(broker.start)
        ready = await _until_status(http, 200, within=60)
        published = sample(app, "e911_alert_events_published_total")
        await eventually(
            lambda: sample(app, "e911_alert_events_published_total") > published, within=60
        )
        flowing = time.monotonic()
        await asyncio.wait_for(streaming, 60)
        await eventually(lambda: sample(app, "e911_alerts_raised_total") >= USERS, within=60)
        await eventually(lambda: _outbox_empty(database), within=60)
        print(
            f"\nbroker kill -9: noticed {noticed - killed:.2f}s after the kill by /readyz, "
            f"{gauge - killed:.2f}s by e911_kafka_up; "
            f"ready again {ready - restarted:.2f}s after the restart, alerts flowing "
            f"{flowing - restarted:.2f}s after it; outage {restarted - killed:.1f}s, "
            f"{waiting:g} alerts waiting in the outbox; log objects in S3 before the kill: "
            f"{objects}"
        )
    finally:
        await producer.stop()

    # Nothing lost: every acknowledged login is a session, each raised one alert.
    conn = await asyncpg.connect(database)
    try:
        stored = {r["session_id"] for r in await conn.fetch("SELECT session_id FROM sessions")}
    finally:
        await conn.close()
    assert stored == set(sent) == {f"s{i}" for i in range(USERS)}
    assert sum(sample(app, "e911_events_invalid_total", reason=r) for r in InvalidReason) == 0

    # The log was kept: what was on the alerts topic before the kill is still there,
    # and everything published since is after it.
    after = _alerts(await _read_topic(bootstrap, topics.alerts, USERS, 30))
    ids_after = [a["id"] for a in after]
    assert {a["id"] for a in before} <= set(ids_after)
    raised = [a for a in after if a["type"] == "e911.alert.raised"]
    # One alert per session, and no alert under two CloudEvents ids (a redelivery of
    # the same event, same id, is allowed).
    ids_of_alert: dict[str, set[str]] = defaultdict(set)
    alerts_of_session: dict[str, set[str]] = defaultdict(set)
    for a in raised:
        ids_of_alert[a["data"]["alert_id"]].add(a["id"])
        alerts_of_session[a["data"]["session_id"]].add(a["data"]["alert_id"])
    assert {k: v for k, v in ids_of_alert.items() if len(v) > 1} == {}
    assert {k: v for k, v in alerts_of_session.items() if len(v) > 1} == {}
    assert set(alerts_of_session) == set(sent)

    # The relay did fail while the broker was down (what waited was not lost), and the
    # daemon reconnected alone and is healthy.
    assert sample(app, "e911_kafka_errors_total", operation="relay") > 0  # it did fail
    assert not running.task.done()
    assert await _readyz(http) == 200
    assert sample(app, "e911_kafka_up") == 1
    assert await running.stop() == 0
