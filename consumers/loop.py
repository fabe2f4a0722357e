"""The batch consumer loop: ``getmany`` → decode → dead letters → one handler call each,
the next poll read and decoded while a batch is stored (see :meth:`ConsumerLoop.run`).

The handler (given by the daemon) writes the batch's state and the next offsets in one
database transaction; on assignment the loop seeks to the offsets the handler kept. So
the database, not Kafka's committed offsets, says what has been consumed, and a crash
at any point replays at most the batch in flight.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from e911d.consumers.batch import BatchRejected, InboundBatch, Rewound, make_batch
from e911d.consumers.batch_size import BatchSizer, BatchSizing
from e911d.consumers.closing import close_within, drop_consumer
from e911d.consumers.dead_letter import dead_letter
from e911d.consumers.decoded import DecodedPoll, decode_poll
from e911d.consumers.topics import TP
from e911d.daemon.core.events import DirectoryEvent, Invalid, InvalidReason, SessionEvent

log = structlog.get_logger(__name__)

COMMIT_EVERY_SECONDS = 1.0


def join_hold_seconds(session_timeout_ms: int, rebalance_timeout_ms: int) -> float:
    """How long a broker may hold a JoinGroup before it answers.

    Kafka answers once every member has rejoined, or when the rebalance timeout ends;
    the embedded broker (Tansu) holds every join for half the session timeout.
    """
    return max(rebalance_timeout_ms, session_timeout_ms / 2) / 1000


# After the join is answered, a close sends a SyncGroup and the LeaveGroup: 2 round trips.
LEAVE_SECONDS = 0.5
# A close gets at least this long, even when the drain used up the stop's budget: a
# LeaveGroup with no join pending is one round trip.
MIN_CLOSE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ConsumerHandlers:
    """What the daemon does with what the loop reads."""

    on_batch: Callable[[InboundBatch], Awaitable[None]]
    on_assigned: Callable[[set[TP]], Awaitable[dict[TP, int]]]
    on_revoked: Callable[[set[TP]], Awaitable[None]]
    on_event: Callable[[str, str, int], None]  # topic, type, how many
    on_invalid: Callable[[str, int, int, Invalid], None]
    on_listener_error: Callable[[str, BaseException], None]
    # Told True when the loop pauses fetching because a batch is slow, False on resume.
    on_paused: Callable[[bool], None] = lambda paused: None
    on_topic_partitions: Callable[[int], None] = lambda n: None  # after each assignment


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    session_topic: str
    directory_topic: str
    dead_letter_topic: str
    group_id: str
    max_event_bytes: int
    poll_max_records: int
    poll_timeout_ms: int
    kafka_options: dict[str, Any]
    max_clock_skew: dt.timedelta = dt.timedelta(minutes=5)
    # A batch still in hand after this long (the database slow or away, its writes
    # retried) pauses every assigned partition until it is stored.
    pause_after_seconds: float = 5.0
    # The fetch buffer's bound: one response per partition, at most this much in all.
    fetch_max_bytes: int = 16 * 1_048_576
    # How long the broker may hold a JoinGroup (join_hold_seconds): a close during a
    # rebalance waits that out before it can leave the group.
    join_hold_seconds: float = 5.0
    # The close ends at most this long after the stop was requested (see close).
    stop_budget_seconds: float = 6.0
    # Read and decode the next poll while a batch is stored (see ConsumerLoop.run).
    pipeline: bool = True
    # Adapt each poll's record limit to the store time (None: always poll_max_records).
    batch_sizing: BatchSizing | None = None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka swallows listener exceptions, so this one counts and reports them."""

    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        tps = {(tp.topic, tp.partition) for tp in revoked}
        self._loop.generation += 1  # at once: a poll read ahead must not be stored now
        try:
            # Let the batch in hand reach the database first, so whoever gets these
            # partitions next starts from offsets that include it.
            async with self._loop.processing:
                await self._loop.handlers.on_revoked(tps)
        except Exception as exc:
            self._loop.handlers.on_listener_error("revoked", exc)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        tps = {(tp.topic, tp.partition) for tp in assigned}
        self._loop.generation += 1  # the seeks below move the positions
        if self._loop.stopping:
            # A join answered while the loop closes: the group is left right after, so
            # loading these partitions would only delay the leave.
            log.info("partitions_assigned_while_stopping", partitions=len(tps))
            return
        try:
            stored = await self._loop.handlers.on_assigned(tps)
            consumer = self._loop.consumer
            for tp in assigned:
                # Nothing stored: read from the start (offset 0; if retention removed it,
                # auto_offset_reset=earliest takes the first one left). Kafka's own
                # committed offsets are never trusted over the database.
                consumer.seek(tp, stored.get((tp.topic, tp.partition), 0))
            log.info("partitions_assigned", partitions=sorted(f"{t}:{p}" for t, p in tps))
            if known := consumer.partitions_for_topic(self._loop.config.session_topic):
                self._loop.handlers.on_topic_partitions(len(known))  # the broker's metadata
        except Exception as exc:
            self._loop.handlers.on_listener_error("assigned", exc)


Starter = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]


async def _start_once(start: Callable[[], Awaitable[None]]) -> None:
    await start()


class ConsumerLoop:
    """The consumer as a component: ``async with`` joins the group, leaving the block
    leaves it; :meth:`run` consumes until :meth:`drain`.

    ``starter`` wraps the client's start (the daemon passes its retry policy), so
    this adapter needs nothing from the daemon.
    """

    def __init__(
        self,
        config: ConsumerConfig,
        handlers: ConsumerHandlers,
        producer: AIOKafkaProducer,
        starter: Starter = _start_once,
    ) -> None:
        self.config = config
        self.handlers = handlers
        self._producer = producer
        self._starter = starter
        self.consumer = AIOKafkaConsumer(
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=max(1_048_576, config.max_event_bytes * 4),
            fetch_max_bytes=max(config.fetch_max_bytes, config.max_event_bytes * 4),
            **config.kafka_options,
        )
        self._stopping = asyncio.Event()
        self._stop_requested_at: float | None = None
        self._running = False
        self._finished = asyncio.Event()
        self.processing = asyncio.Lock()  # held while a batch is applied, see _Listener
        self.batches = 0
        self.paused = False
        # Bumped by every rebalance and rewind: a poll read before one is not stored.
        self.generation = 0
        self.ahead: DecodedPoll | None = None  # the poll read while a batch is stored
        self.dropped_polls = 0
        self.sizer = BatchSizer(
            config.batch_sizing
            or BatchSizing(config.poll_max_records, config.poll_max_records, 0.0)
        )
        self._uncommitted: dict[TP, int] = {}
        self._next_commit = 0.0

    async def __aenter__(self) -> ConsumerLoop:
        try:
            await self._starter(self.consumer.start)
            self.consumer.subscribe(
                [self.config.session_topic, self.config.directory_topic], listener=_Listener(self)
            )
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def request_stop(self) -> None:
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()  # the stop's budget starts here
        self._stopping.set()

    async def drain(self) -> None:
        """Stop fetching and wait for the batch in hand to be stored."""
        self.request_stop()
        if self._running:
            await self._finished.wait()

    async def run(self) -> None:
        """Consume until :meth:`request_stop`; the batch in hand is always finished.

        Pipelined, one deep: while a batch is stored, the next poll is read and decoded
        (the store's round trips leave the event loop idle). Batches are still stored one
        at a time, in the order they were read; a poll read ahead is stored only if no
        rebalance or rewind came between (see :mod:`e911d.consumers.decoded`), and one
        read ahead when the stop comes is dropped: it was not stored, so it is read again.
        """
        self._running = True
        try:
            while not self._stopping.is_set():
                poll, self.ahead = self.ahead or await self._poll(), None
                if poll is None:
                    continue
                storing = asyncio.ensure_future(self._apply(poll))
                try:
                    if self.config.pipeline:
                        self.ahead = await self._poll_while(storing)
                    offsets = await storing
                finally:
                    if not storing.done():  # cancelled, or the poll failed: unwind the store
                        storing.cancel()
                        await asyncio.wait((storing,))
                if offsets is None:
                    continue
                self.batches += 1
                # Kafka's copy is informational (the database's is the real one): at
                # most one commit round trip a second, not one per batch.
                self._uncommitted.update(offsets)
                if time.monotonic() >= self._next_commit:
                    self._next_commit = time.monotonic() + COMMIT_EVERY_SECONDS
                    pending, self._uncommitted = self._uncommitted, {}
                    await self._commit(pending)
        finally:
            self.ahead = None  # read, not stored: read again by whoever owns it next
            self._finished.set()

    async def _poll(self) -> DecodedPoll | None:
        records = await self.consumer.getmany(
            timeout_ms=self.config.poll_timeout_ms, max_records=self.sizer.size
        )
        if not records:
            return None
        cfg = self.config
        # The generation once the records are in hand (consumers/decoded.py says why).
        return decode_poll(
            records, cfg.session_topic, cfg.max_event_bytes, cfg.max_clock_skew, self.generation
        )

    async def _poll_while(self, storing: asyncio.Future[Any]) -> DecodedPoll | None:
        """The next poll, read while ``storing`` runs (None if it ends with nothing read)."""
        while not self._stopping.is_set():
            poll = await self._poll()
            if poll is not None or storing.done():
                return poll
        return None

    async def _apply(self, poll: DecodedPoll) -> dict[TP, int] | None:
        """Store one poll (its offsets, or None if it was dropped)."""
        async with self.processing:
            if poll.generation != self.generation:
                # Read before a rebalance or a rewind that moved the positions: the
                # records are read again from the offsets the database holds.
                log.info("poll_dropped", records=poll.records, reason="positions_moved")
                self.dropped_polls += 1
                return None
            started = time.monotonic()
            offsets = await self._process(poll)
            self.sizer.observe(poll.records, time.monotonic() - started)
            return offsets

    async def close(self) -> None:
        """Leave the group, so the partitions move to the other instances at once.

        A close during a rebalance cannot leave before the broker answers the pending
        JoinGroup (aiokafka's stop() finishes the join, then sends the LeaveGroup), and
        the broker may hold that answer ``join_hold_seconds``. So the close waits that
        long plus LEAVE_SECONDS, but not past ``stop_budget_seconds`` after the stop
        was requested (the drain's share of it spent; at least MIN_CLOSE_SECONDS):
        exiting within the 10 s a platform gives before SIGKILL is the harder promise.
        When the budget gives, the join is abandoned and the connections closed (in
        2 x UNWIND_SECONDS at most), but the group is not left: the others wait out this
        member's session timeout, as after a crash. The defaults fit (a 5 s hold plus
        0.5 s, in a 6 s budget); longer session or rebalance timeouts may not.
        """
        self.request_stop()
        within = min(self.config.join_hold_seconds + LEAVE_SECONDS, self._budget_left())
        await close_within(
            self.consumer.stop(), within, "consumer", abort=lambda: drop_consumer(self.consumer)
        )

    def _budget_left(self) -> float:
        started = self._stop_requested_at
        spent = 0.0 if started is None else time.monotonic() - started
        return max(MIN_CLOSE_SECONDS, self.config.stop_budget_seconds - spent)

    async def _process(self, poll: DecodedPoll) -> dict[TP, int]:
        good, dead, offsets = poll.good, list(poll.dead), poll.offsets
        if dead:
            await dead_letter(self._producer, self.config.dead_letter_topic, dead)
        try:
            await self._store(self.handlers.on_batch(poll.batch))
        except Rewound as exc:
            log.warning("consumer_rewound", error=str(exc))
            self.generation += 1  # a poll read ahead is from before these seeks
            for (topic, partition), offset in exc.offsets.items():
                self.consumer.seek(TopicPartition(topic, partition), offset)
            return {}
        except BatchRejected as exc:
            log.error("batch_rejected", error=str(exc), events=len(good))
            rejected = await self._one_by_one(good, offsets)
            dead.extend(rejected)
            bad = {id(m) for m, _ in rejected}
            good = [(m, e) for m, e in good if id(m) not in bad]
        # Counted once the batch is durable, so a metric never runs ahead of the state.
        for msg, invalid in dead:
            self.handlers.on_invalid(msg.topic, msg.partition, msg.offset, invalid)
        counts = Counter((msg.topic, str(event.kind)) for msg, event in good)
        for (topic, kind), n in counts.items():
            self.handlers.on_event(topic, kind, n)
        return offsets

    async def _store(self, storing: Awaitable[None]) -> None:
        """Await the handler; if it takes longer than ``pause_after_seconds``, pause
        fetching until it is done.

        Memory is bounded without this: the loop never polls while a batch is in hand,
        and aiokafka's background fetcher holds at most one response per partition
        (``max_partition_fetch_bytes`` each, ``fetch_max_bytes`` a request). Pausing
        makes a slow or absent database visible (``on_paused``) and stops fetching
        altogether, rather than leaving the fetcher to poll the broker for partitions it
        has drained; positions do not move, so nothing is skipped on resume.
        """
        task = asyncio.ensure_future(storing)
        try:
            await asyncio.wait((task,), timeout=self.config.pause_after_seconds)
            if task.done():
                task.result()
                return
            paused = self.consumer.assignment()
            self.consumer.pause(*paused)
            self.paused = True
            self.handlers.on_paused(True)
            log.warning("consumer_paused", partitions=len(paused))
            try:
                await task
            finally:
                # A rebalance may have run meanwhile: resume what is still assigned.
                self.consumer.resume(*(self.consumer.paused() & self.consumer.assignment()))
                self.paused = False
                self.handlers.on_paused(False)
                log.info("consumer_resumed")
        finally:
            if not task.done():  # we were cancelled: so is the batch, and it unwinds first
                task.cancel()
                await asyncio.wait((task,))

    async def _one_by_one(
        self, good: list[tuple[Any, SessionEvent | DirectoryEvent]], offsets: dict[TP, int]
    ) -> list[tuple[Any, Invalid]]:
        """A batch the database refused for good: find the event(s) it refuses, dead-letter
        them, apply the rest, so one poison event never blocks a partition."""
        rejected: list[tuple[Any, Invalid]] = []
        for msg, event in good:
            try:
                await self.handlers.on_batch(make_batch([(msg, event)], {}))
            except BatchRejected as exc:
                invalid = Invalid(InvalidReason.REJECTED, str(exc)[:300])
                await dead_letter(self._producer, self.config.dead_letter_topic, [(msg, invalid)])
                rejected.append((msg, invalid))
        await self.handlers.on_batch(InboundBatch(next_offsets=offsets))
        return rejected

    async def _commit(self, offsets: dict[TP, int]) -> None:
        """Kafka's committed offsets are informational (lag dashboards, tooling); the
        database copy written by on_batch is the one the loop seeks to."""
        owned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        mine = {TopicPartition(t, p): o for (t, p), o in offsets.items() if (t, p) in owned}
        if not mine:
            return
        try:
            await self.consumer.commit(mine)
        except KafkaError as exc:
            log.info("kafka_commit_skipped", error=repr(exc))
