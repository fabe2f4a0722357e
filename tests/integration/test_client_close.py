"""Kafka clients close within their bound and leak nothing; an instance stopped during a
rebalance still leaves the group.

When one instance of a group stops, the others are told to rejoin; a second instance
stopped at that moment has a JoinGroup pending, which the broker may hold before it
answers (the embedded broker holds every join for half the session timeout). aiokafka
cannot leave the group before that answer, so the close has to wait it out: cut short,
the client's connections used to leak and the group was never left, so whoever came
next waited out the dead member's session.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import uuid
from functools import partial
from typing import Any

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from e911d.consumers.closing import close_within, drop_consumer, drop_producer
from tests.support import eventually

pytestmark = pytest.mark.integration

# The defaults: the broker may hold a join for max(rebalance timeout, half the session
# timeout) = 5 s, and the close may wait until the shutdown timeout (6 s) has passed
# since the stop was requested, so the wait fits.
SESSION_TIMEOUT = 10.0
GROUP = {"session_timeout_ms": int(SESSION_TIMEOUT * 1000), "heartbeat_interval_ms": 500}
ALL = {0, 1, 2, 3}


def _owns(running: Any, partitions: set[int]) -> bool:
    ownership = running.app.ownership
    return bool(ownership.loaded and ownership.partitions == partitions)


def _port(broker: Any) -> int:
    return int(broker.bootstrap_servers.rsplit(":", 1)[1])


def _connections_to(port: int) -> list[Any]:
    """This process's sockets connected to ``port`` (an unclosed client keeps one)."""
    return [
        c
        for c in psutil.Process(os.getpid()).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port
    ]


async def test_an_instance_stopped_during_a_rebalance_leaves_the_group(
    broker, make_settings, start_app
):
    settings = make_settings(kafka=GROUP, shutdown_timeout_seconds=6.0)
    a = await start_app(settings)
    b = await start_app(settings, wait_ready=False)

    def split() -> bool:
        pa, pb = a.app.ownership.partitions, b.app.ownership.partitions
        return a.app.ownership.loaded and b.app.ownership.loaded and pa | pb == ALL and pa and pb

    await eventually(split, within=4 * SESSION_TIMEOUT)

    with capture_logs() as logs:
        assert await a.stop() == 0  # leaves: b is told to rejoin at its next heartbeat
        # b has given its partitions up and sent its JoinGroup, which the broker holds.
        await eventually(lambda: not b.app.ownership.loaded, within=SESSION_TIMEOUT)
        stopping = time.monotonic()
        assert await b.stop() == 0
        stopped = time.monotonic() - stopping

    failed = [e for e in logs if e["event"] == "kafka_client_close_failed"]
    assert failed == []
    assert any(e["event"] == "daemon_stopped" for e in logs)
    assert stopped < 10.0, f"the stop took {stopped:.1f} s"
    # Nothing of a or b is still connected (an unclosed client keeps its sockets).
    await eventually(lambda: _connections_to(_port(broker)) == [], within=2)

    # b left the group: a newcomer is given every partition after one join (half the
    # session timeout on this broker), not after b's session has timed out as well.
    joining = time.monotonic()
    c = await start_app(settings, wait_ready=False)
    await eventually(lambda: _owns(c, ALL), within=3 * SESSION_TIMEOUT)
    took = time.monotonic() - joining
    assert took < SESSION_TIMEOUT, f"the newcomer waited {took:.1f} s: b did not leave"
    assert await c.stop() == 0


class _Revoked(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.revoked = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.revoked.set()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass


async def test_a_consumer_close_cut_short_mid_join_closes_every_connection(broker, topics):
    """The other side of the budget: a close that cannot wait for the join abandons it,
    and still leaves no connection, task or warning behind."""
    group = f"g{uuid.uuid4().hex[:8]}"

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap_servers,
            group_id=group,
            session_timeout_ms=6_000,
            heartbeat_interval_ms=200,
        )

    first, second = consumer(), consumer()
    listener = _Revoked()
    await first.start()
    first.subscribe([topics.session_events])
    while not first.assignment():
        await first.getmany(timeout_ms=100)
    await second.start()
    second.subscribe([topics.session_events], listener=listener)
    while not second.assignment() or len(first.assignment()) == 4:
        await asyncio.gather(first.getmany(timeout_ms=100), second.getmany(timeout_ms=100))
    listener.revoked.clear()
    await first.stop()
    await listener.revoked.wait()  # second's JoinGroup is now held (3 s here)

    with capture_logs() as logs:
        await close_within(second.stop(), 0.2, "consumer", abort=partial(drop_consumer, second))
    assert [e["event"] for e in logs] == ["kafka_client_close_failed"]
    assert all(task.done() for task in _background(second))
    assert not any(conn.connected() for conn in second._client._conns.values())
    await eventually(lambda: _connections_to(_port(broker)) == [], within=2)
    del first, second
    gc.collect()  # a client left unclosed would warn here (an error in this suite)


def _background(consumer: AIOKafkaConsumer) -> list[asyncio.Task[Any]]:
    coordinator = consumer._coordinator
    tasks = [consumer._fetcher._fetch_task, coordinator._coordination_task]
    tasks += [t for t in (coordinator._heartbeat_task, coordinator._commit_refresh_task) if t]
    return tasks


async def test_a_producer_close_cut_short_mid_flush_closes_every_connection(broker, topics):
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5_000)
    await producer.start()
    await producer.send_and_wait(topics.alerts, b"first")  # connected to the partition leader
    pending = await producer.send(topics.alerts, b"lingering")  # lingers 5 s: the stop waits for it

    with capture_logs() as logs:
        await close_within(producer.stop(), 0.1, "producer", abort=partial(drop_producer, producer))
    assert [e["event"] for e in logs] == ["kafka_client_close_failed"]
    assert producer._sender.sender_task.done()
    with pytest.raises(KafkaConnectionError):
        await pending  # failed, not left waiting forever
    assert not any(conn.connected() for conn in producer.client._conns.values())
    await eventually(lambda: _connections_to(_port(broker)) == [], within=2)
    del producer
    gc.collect()  # as above
