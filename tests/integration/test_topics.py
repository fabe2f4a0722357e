"""Topic creation at start against the real broker: the broker's replication default,
patience with a broker that comes up after the daemon, and topics left as they are."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from structlog.testing import capture_logs

from e911d.config import Settings
from e911d.consumers.topics import ensure_topics
from e911d.daemon.commands.embedded import EmbeddedBroker
from tests.support import Topics, eventually

# Not the broker's auto-creation default (Tansu makes 4 partitions when a metadata
# request names an unknown topic), so a topic with this count was created by us.
PARTITIONS = 5


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        assert set(topics) <= set(await admin.list_topics())  # describing would create them
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


def names(t: Topics) -> list[str]:
    return [t.session_events, t.directory_events, t.alerts, t.dead_letter]


async def test_existing_topic_with_fewer_partitions_is_reported_not_altered(
    broker: EmbeddedBroker, make_settings: Callable[..., Settings], start_app: Any
) -> None:
    topics = Topics.unique()
    bootstrap = {"bootstrap_servers": broker.bootstrap_servers}
    await ensure_topics(bootstrap, [topics.session_events], partitions=1, replication=None)
    settings = make_settings(kafka={"topics": topics.as_settings(), "topic_partitions": PARTITIONS})
    with capture_logs() as logs:
        running = await start_app(settings)
    warnings = [e for e in logs if e["event"] == "topic_has_fewer_partitions"]
    assert warnings == [
        {
            "event": "topic_has_fewer_partitions",
            "log_level": "warning",
            "topic": topics.session_events,
            "partitions": 1,
            "configured": PARTITIONS,
        }
    ]
    counts = await partition_counts(broker.bootstrap_servers, names(topics))
    assert counts[topics.session_events] == 1  # not altered
    assert counts[topics.alerts] == PARTITIONS  # the missing ones created as configured
    assert counts[topics.dead_letter] == PARTITIONS
    assert await running.stop() == 0
    # The same finding as a value, for callers other than the daemon.
    report = await ensure_topics(bootstrap, names(topics), PARTITIONS, None)
    assert report.fewer_partitions == {topics.session_events: 1}
    assert report.created == []


async def test_topics_are_created_when_the_broker_comes_up_after_the_daemon(
    make_settings: Callable[..., Settings], start_app: Any, unused_port: int
) -> None:
    """A first start where the broker is still booting: creation waits for it with
    the start-up backoff (it used to be tried once and skipped)."""
    port = unused_port
    topics = Topics.unique()
    settings = make_settings(
        kafka={
            "bootstrap_servers": f"127.0.0.1:{port}",
            "topics": topics.as_settings(),
            "topic_partitions": PARTITIONS,
        }
    )
    late = EmbeddedBroker(port=port)
    try:
        with capture_logs() as logs:
            running = await start_app(settings, wait_ready=False)
            await eventually(
                lambda: any(
                    e["event"] == "retrying" and e.get("operation") == "kafka_topics" for e in logs
                ),
                within=20,
            )
            assert not running.task.done()
            await asyncio.to_thread(late.start)
            await running.ready()
        created = [e for e in logs if e["event"] == "topics_created"]
        assert created and created[0]["replication_factor"] == "broker default"
        counts = await partition_counts(late.bootstrap_servers, names(topics))
        assert counts == dict.fromkeys(names(topics), PARTITIONS)
        assert await running.stop() == 0
    finally:
        await asyncio.to_thread(late.stop)


async def test_a_stop_during_the_topic_wait_ends_the_start_promptly(
    make_settings: Callable[..., Settings], start_app: Any, unused_port: int
) -> None:
    settings = make_settings(kafka={"bootstrap_servers": f"127.0.0.1:{unused_port}"})
    with capture_logs() as logs:
        running = await start_app(settings, wait_ready=False)
        await eventually(lambda: any(e.get("operation") == "kafka_topics" for e in logs))
    running.app.request_stop()
    assert await asyncio.wait_for(running.task, 5) == 0
