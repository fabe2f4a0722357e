"""An alert event Kafka refuses for its size never stalls the relay
(docs/spec.md#alerts-topic; daemon/kafka/publish.py).

e911d keeps its own alerts small, so the refused rows are written into the outbox by
hand, as an older version or a broker configured below a normal alert's size would
leave them: each is 2 MiB, over the producer's 1 MiB request limit, and each is
followed by a small event on the same partition.
"""

from __future__ import annotations

import json

import asyncpg

from tests.support import Producer, TopicWatcher, directory, eventually, login, sample

PARTITIONS = 4  # make_settings' topic_partitions
HOME_IP = "198.51.100.7"


def _event(event_id: str, session_id: str, padding: int = 0) -> bytes:
    data = {"session_id": session_id, "padding": "x" * padding}
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "urn:test",
            "type": "test.event",
            "data": data,
        }
    ).encode()


async def _outbox_empty(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_record_too_large_is_given_up_and_the_partition_goes_on(
    broker, topics, database, make_settings, start_app
):
    conn = await asyncpg.connect(database)
    try:
        for p in range(PARTITIONS):
            for value in (
                _event(f"big-{p}", f"s-big-{p}", 2 * 1024 * 1024),
                _event(f"small-{p}", f"s-small-{p}"),
            ):
                await conn.execute(
                    "INSERT INTO outbox (kafka_partition, topic, key, value) "
                    "VALUES ($1, $2, $3, $4)",
                    p,
                    topics.alerts,
                    b"u1",
                    value,
                )
        async with TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts:
            running = await start_app(make_settings())
            app = running.app
            # Every small event behind a refused one is published.
            await alerts.wait_for(
                lambda got: len([m for m in got if m.type == "test.event"]) == PARTITIONS,
                within=30,
            )
            published = {m.event["id"] for m in alerts.messages if m.type == "test.event"}
            assert published == {f"small-{p}" for p in range(PARTITIONS)}
            # Counted and deleted once the batch's transaction commits.
            await eventually(
                lambda: (
                    sample(app, "e911_alert_events_refused_total", reason="too_large") == PARTITIONS
                )
            )
            await eventually(lambda: _outbox_empty(conn))
            # And the relay goes on with the alerts decided after.
            async with Producer(broker.bootstrap_servers) as p:
                await p.send_all(
                    topics.directory_events, directory(users={"u1": (True, "hq")}), key="acme"
                )
                await p.send(topics.session_events, login("acme", "u1", "s1", HOME_IP), key="u1")
                await alerts.wait_count("e911.alert.raised", 1, within=20)
            await eventually(
                lambda: sample(app, "e911_alert_events_published_total") >= PARTITIONS + 1
            )
            assert await running.stop() == 0
    finally:
        await conn.close()
