"""Ingest: what the consumer loop reads becomes state, in one transaction per batch.

Directory changes, session changes, the alerts they end, dismissals and the consumed
offsets commit together, so a crash anywhere replays at most the batch in flight and
replaying it changes nothing. Assignment loads the owned partitions' sessions into the
schedule; revocation forgets them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

import structlog

from e911d.consumers.batch import BatchRejected, InboundBatch, Rewound
from e911d.consumers.loop import ConsumerHandlers
from e911d.consumers.topics import TP
from e911d.daemon.core.events import Invalid
from e911d.daemon.core.model import ResolveReason
from e911d.daemon.core.session_fold import FoldResult, fold_session_events
from e911d.daemon.services.deps import Runtime, learning_config, utcnow
from e911d.daemon.services.inflight import InFlight
from e911d.daemon.services.relay import Relay
from e911d.daemon.store.alerts import ResolvedAlert
from e911d.daemon.store.confirmed_networks import Learning, learn
from e911d.daemon.store.db import DatabaseError, retrying
from e911d.daemon.store.directory_bulk import apply_changes
from e911d.daemon.store.offsets import load_offsets, lock_offsets, rewound, store_offsets
from e911d.daemon.store.sessions import PartitionSessions, SessionStore
from e911d.schedulers.loaded import LoadedPartition

log = structlog.get_logger(__name__)


class Ingest:
    def __init__(
        self, rt: Runtime, relay: Relay, fail: Callable[[str, BaseException], None]
    ) -> None:
        self._rt = rt
        self._relay = relay
        self._fail = fail
        self._sessions = SessionStore()
        self._ttl = dt.timedelta(seconds=rt.settings.checks.session_ttl_seconds)
        self._learning = learning_config(rt.settings)
        self._in_flight = InFlight()
        # What this process assigned and stored: a database holding less than that
        # lost commits (a failover), and what it lost is consumed again.
        self._assigned: set[TP] = set()
        self._stored: dict[TP, int] = {}

    def handlers(self) -> ConsumerHandlers:
        return ConsumerHandlers(
            on_batch=self.apply_batch,
            on_assigned=self.on_assigned,
            on_revoked=self.on_revoked,
            on_event=self._count_event,
            on_invalid=self._count_invalid,
            on_listener_error=self._listener_failed,
            on_paused=lambda paused: self._rt.metrics.consumer_paused.set(int(paused)),
            on_topic_partitions=self._rt.metrics.partitions_in_topic.set,
        )

    async def drain(self) -> None:
        """Wait for a batch or an assignment in hand; the consumer loop's own drain has
        already stopped fetching, so nothing new arrives."""
        await self._in_flight.idle()

    def _count_event(self, topic: str, type_: str, n: int) -> None:
        self._rt.metrics.events.labels(topic=topic, type=type_).inc(n)

    def _count_invalid(self, topic: str, partition: int, offset: int, invalid: Invalid) -> None:
        self._rt.metrics.events_invalid.labels(reason=str(invalid.reason)).inc()
        log.warning(
            "event_invalid",
            topic=topic,
            partition=partition,
            offset=offset,
            reason=str(invalid.reason),
            detail=invalid.detail,
        )

    def _listener_failed(self, stage: str, exc: BaseException) -> None:
        self._rt.metrics.rebalance_errors.inc()
        self._fail(f"rebalance listener ({stage})", exc)

    async def apply_batch(self, batch: InboundBatch) -> None:
        """One transaction: directory changes, session changes, their alerts, offsets."""
        rt = self._rt
        started_at = time.perf_counter()
        with self._in_flight:
            fold, resolved = await self._store(batch, utcnow())
        wall = time.time()
        # A new IP or an alert dismissed: the next check of these asks the database.
        rt.memos.sessions_changed([*fold.rows, *(d.session_id for d in fold.dismissals)])
        # Asked once a batch: a per-session debug line, even one filtered out, cost a
        # sixth of a login storm's CPU (py-spy, benchmarks.million).
        verbose = log.is_enabled_for(logging.DEBUG)
        for sid in fold.ended:
            ended = fold.rows.get(sid)
            rt.schedule.remove(sid, None if ended is None else ended.partition)
            if verbose:
                log.debug("session_ended", session_id=sid)
        for sid in fold.started:
            row = fold.rows[sid]
            if row.partition in rt.ownership.partitions:
                rt.schedule.add(sid, row.logged_in_at.timestamp(), row.partition, wall)
                if not verbose:
                    continue
                log.debug(
                    "session_started",
                    session_id=sid,
                    account_id=row.account_id,
                    user_id=row.user_id,
                    logged_in_at=row.logged_in_at.isoformat(),
                )
        rt.metrics.sessions_active.set(len(rt.schedule))
        if fold.dismissals_ignored:
            rt.metrics.dismissals_ignored.inc(fold.dismissals_ignored)
        self._relay.decided(resolved=resolved)
        kind = "directory" if batch.directory_events else "sessions"
        rt.metrics.batch_duration.labels(kind=kind).observe(time.perf_counter() - started_at)

    async def _store(
        self, batch: InboundBatch, now: dt.datetime
    ) -> tuple[FoldResult, list[ResolvedAlert]]:
        rt = self._rt

        # Every owned partition, not only the batch's: one that gets no event for a while
        # may have lost commits too, and the reload consumes them all again.
        expected = dict(self._stored)

        async def tx() -> tuple[FoldResult, list[ResolvedAlert], Learning]:
            async with rt.pool.acquire() as conn, conn.transaction():
                group = rt.settings.kafka.group_id
                if expected:
                    held = await load_offsets(conn, group, expected)
                    behind = rewound(held, expected)
                    if behind:  # rolls the transaction back: nothing of the batch is kept
                        raise Rewound(behind)
                # Events below the stored offsets were applied by whoever stored them
                # (this instance was paused while its partitions moved): not again.
                stored = await lock_offsets(conn, group, batch.partitions())
                fresh, dropped = batch.after(stored)
                for (topic, part), n in sorted(dropped.items()):
                    log.warning(
                        "stale_events_skipped",
                        topic=topic,
                        partition=part,
                        events=n,
                        stored_offset=stored[(topic, part)],
                    )
                await apply_changes(conn, [ev.change for ev in fresh.directory_events])
                ids = sorted({e.session_id for _, e in fresh.session_events})
                existing = await self._sessions.lock(conn, ids) if ids else {}
                fold = fold_session_events(existing, fresh.session_events, now, self._ttl)
                changed = [r for sid, r in fold.rows.items() if existing.get(sid) != r]
                await self._sessions.save(conn, changed)
                # Networks users confirmed in the app (docs/spec.md#networks-a-user-confirmed),
                # from the sessions and the directory as this batch leaves them.
                learning = await learn(conn, fresh.directory_events, now, self._learning)
                resolved = await self._rt.alerts.resolve_sessions(
                    conn, sorted(fold.ended), ResolveReason.SESSION_ENDED, now
                )
                for d in fold.dismissals:
                    hit = await self._rt.alerts.dismiss(conn, d.session_id, d.alert_id, now)
                    if hit is None:
                        fold.ignored += 1
                        fold.dismissals_ignored += 1
                    else:
                        resolved.append(hit)
                await store_offsets(conn, group, batch.next_offsets)
                return fold, resolved, learning

        try:
            fold, resolved, learning = await retrying("apply_batch", tx, stop=rt.stopping)
        except Rewound as exc:
            raise Rewound(await self._reload(exc)) from exc
        except DatabaseError as exc:
            if exc.transient:
                raise
            raise BatchRejected(str(exc)) from exc
        # Counted once committed: a refused batch is replayed and counted then.
        for result, n in learning.results.items():
            rt.metrics.confirmations.labels(result=str(result)).inc(n)
        self._stored.update(batch.next_offsets)
        for ev in fold.owner_mismatches:
            log.warning(
                "session_owner_mismatch",
                session_id=ev.session_id,
                account_id=ev.account_id,
                user_id=ev.user_id,
            )
        return fold, resolved

    async def _reload(self, exc: Rewound) -> dict[TP, int]:
        """The database lost commits this process made (docs/spec.md#scale-and-durability):
        forget the owned partitions and load them again from what the database holds,
        as a new owner would; the loop then consumes again from its offsets."""
        log.warning(
            "database_rewound",
            partitions=sorted(f"{t}:{p}:{o}" for (t, p), o in exc.offsets.items()),
        )
        self._rt.metrics.database_rewinds.inc()
        tps = set(self._assigned)
        await self.on_revoked(tps)
        offsets = await self.on_assigned(tps)
        return {tp: offsets.get(tp, 0) for tp in tps}

    async def on_assigned(self, tps: set[TP]) -> dict[TP, int]:
        rt = self._rt
        session_topic = rt.settings.kafka.topics.session_events
        parts = {p for t, p in tps if t == session_topic}

        async def load() -> tuple[dict[TP, int], list[PartitionSessions]]:
            async with rt.pool.acquire() as conn, conn.transaction(readonly=True):
                offsets = await load_offsets(conn, rt.settings.kafka.group_id, tps)
                loaded = [p async for p in self._sessions.active_in_partitions(conn, sorted(parts))]
                return offsets, loaded

        with self._in_flight:
            offsets, loaded = await retrying("load_partitions", load, stop=rt.stopping)
        self._assigned, self._stored = set(tps), dict(offsets)
        # Another instance may have decided these sessions while we did not own them
        # (before the adds: at a start-up nothing is scheduled yet, nothing to scan).
        rt.memos.handover(parts)
        rt.ownership.partitions = set(parts)
        now = time.time()
        sessions = 0
        for part in loaded:
            sessions += rt.schedule.add_loaded(
                LoadedPartition.of_packed(
                    part.partition, part.ids, part.lengths, part.logged_in_at, part.due_order, now
                )
            )
            await asyncio.sleep(0)  # a partition at a time: the loop serves /readyz between
        rt.ownership.loaded = True
        rt.metrics.partitions_owned.set(len(parts))
        rt.metrics.sessions_active.set(len(rt.schedule))
        log.info("partitions_loaded", partitions=sorted(parts), sessions=sessions)
        self._relay.wake()
        return offsets

    async def on_revoked(self, tps: set[TP]) -> None:
        rt = self._rt
        session_topic = rt.settings.kafka.topics.session_events
        parts = {p for t, p in tps if t == session_topic}
        self._assigned -= tps
        for tp in tps:
            self._stored.pop(tp, None)
        rt.ownership.loaded = False
        rt.ownership.partitions -= parts
        dropped = rt.schedule.drop_partitions(parts)  # their memos go with them
        rt.memos.handover(set())
        rt.metrics.sessions_active.set(len(rt.schedule))
        log.info("partitions_revoked", partitions=sorted(parts), sessions=dropped)
