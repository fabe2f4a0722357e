"""Static group membership against the embedded broker (docs/spec.md#scale-and-durability):
an instance that dies without leaving the group (kill -9: no LeaveGroup, heartbeats
stop, connections drop) and comes back under the same E911_KAFKA__GROUP_INSTANCE_ID is
given back the partitions it held before its session timeout ends, and the instance
that stayed up keeps its own throughout, without a rebalance.

Without the id the restarted process is a new member: its dead self keeps its
partitions until the session timeout ends, and the survivor is rebalanced twice; the
"every partition owned by a live member before the session timeout" assertion fails.

The embedded broker (Tansu 0.6) honours the id only within a window: it holds the
restarted member's JoinGroup for half the session timeout and its SyncGroup for 3 s
more, and that rejoin does not renew the member's last contact, so the dead process's
session must not end before the restarted one's first heartbeat. Here: the kill comes
at most one heartbeat (1 s) after the last one, and 1 + 7 + 3 s is inside the 14 s
session. (With the defaults, 10 s and heartbeats every 3 s, a restart that takes more
than ~1 s misses the window on this broker; a Kafka broker answers the rejoin at once.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from e911d.config import Settings, load_settings
from e911d.consumers.closing import drop_consumer
from e911d.consumers.loop import ConsumerHandlers, ConsumerLoop
from e911d.daemon.kafka.clients import consumer_config, open_producer
from tests.support import eventually

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = 14.0
HEARTBEAT = 1.0
TP = tuple[str, int]


@dataclass
class Member:
    """What one consumer was given and taken, in order."""

    owned: set[TP] = field(default_factory=set)
    revocations: int = 0
    assignments: list[tuple[float, set[TP]]] = field(default_factory=list)

    def handlers(self) -> ConsumerHandlers:
        async def assigned(tps: set[TP]) -> dict[TP, int]:
            self.owned = set(tps)
            self.assignments.append((time.monotonic(), set(tps)))
            return {}

        async def revoked(tps: set[TP]) -> None:
            self.revocations += 1
            self.owned = set()

        async def nothing(*args: object) -> None:
            return None

        return ConsumerHandlers(
            on_batch=nothing,
            on_assigned=assigned,
            on_revoked=revoked,
            on_event=lambda *a: None,
            on_invalid=lambda *a: None,
            on_listener_error=lambda what, exc: pytest.fail(f"{what}: {exc!r}"),
        )


def _settings(broker, topics, group: str, instance_id: str) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap_servers": broker.bootstrap_servers,
                "group_id": group,
                "group_instance_id": instance_id,
                "topics": topics.as_settings(),
                "session_timeout_ms": int(SESSION_TIMEOUT * 1000),
                "heartbeat_interval_ms": int(HEARTBEAT * 1000),
                "poll_timeout_ms": 100,
            }
        },
    )


class _Heartbeats(logging.Handler):
    """Counts the heartbeats aiokafka sends, by member id (its debug log says so)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sent: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Heartbeat: %s[%s] %s" and isinstance(record.args, tuple):
            self.sent.append(str(record.args[2]))


@contextlib.contextmanager
def _heartbeats() -> Iterator[_Heartbeats]:
    logger = logging.getLogger("aiokafka.consumer.group_coordinator")
    handler, level = _Heartbeats(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.asynccontextmanager
async def _member(settings: Settings, member: Member) -> AsyncIterator[ConsumerLoop]:
    """A consumer as the daemon builds it, consuming in a task until the block ends."""
    stop = asyncio.Event()
    async with open_producer(settings, stop) as producer:
        loop = ConsumerLoop(consumer_config(settings), member.handlers(), producer)
        async with loop:
            task = asyncio.create_task(loop.run())
            try:
                yield loop
            finally:
                await loop.drain()
                await task


async def test_a_killed_static_member_takes_its_partitions_back_before_its_session_ends(
    broker, topics
):
    group = f"g{uuid.uuid4().hex[:8]}"
    a, b = Member(), Member()
    every = {(t, p) for t in (topics.session_events, topics.directory_events) for p in range(4)}
    settings_a = _settings(broker, topics, group, "e911d-0")
    settings_b = _settings(broker, topics, group, "e911d-1")
    assert consumer_config(settings_b).kafka_options["group_instance_id"] == "e911d-1"

    async with _member(settings_a, a):
        async with _member(settings_b, b) as first_b:
            await eventually(
                lambda: a.owned and b.owned and a.owned | b.owned == every,
                within=4 * SESSION_TIMEOUT,
            )
            held_by_b, held_by_a, a_revoked = set(b.owned), set(a.owned), a.revocations
            member_id = first_b.consumer._coordinator.member_id
            with _heartbeats() as beats:
                # The second heartbeat is sent once the first was answered: the broker
                # heard from b at most one heartbeat interval before the kill.
                await eventually(lambda: beats.sent.count(member_id) >= 2, within=4 * HEARTBEAT)
            # kill -9: heartbeats stop and the connections drop, and no LeaveGroup is
            # sent (a static member sends none when it closes either).
            await first_b.drain()
            await drop_consumer(first_b.consumer)
            killed = time.monotonic()
            first_b.consumer._closed = True  # dropped: its own close has nothing to do

        back = Member()
        async with _member(settings_b, back):
            await eventually(lambda: back.owned == held_by_b, within=2 * SESSION_TIMEOUT)
            took = back.assignments[0][0] - killed
            assert back.assignments[0][1] == held_by_b, "the restarted member got other partitions"
            # Before the dead process's session ended: it was not waited out.
            assert took < SESSION_TIMEOUT - 1.5, (
                f"the restarted member waited {took:.1f} s for its partitions "
                f"(session timeout {SESSION_TIMEOUT} s)"
            )
            # The survivor was never rebalanced: it kept what it had all along.
            assert a.revocations == a_revoked
            assert a.owned == held_by_a
            assert a.owned | back.owned == every
