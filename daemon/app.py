"""The composition root: builds every component, runs them, and stops them in order.

One AsyncExitStack owns start-up and teardown; every background task is named and
watched, and if one dies the daemon stops loudly instead of limping.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from e911d.config import Settings
from e911d.consumers.events import Invalid
from e911d.consumers.loop import (
    BatchRejected,
    ConsumerConfig,
    ConsumerHandlers,
    ConsumerLoop,
    InboundBatch,
    close_within,
)
from e911d.consumers.topics import TP, ensure_topics
from e911d.daemon.alerts import AlertStore, ResolvedAlert
from e911d.daemon.checks import CheckConfig, CheckReport, CheckRunner
from e911d.daemon.db import DatabaseError, PoolConfig, connect_pool, load_queries, migrate, retrying
from e911d.daemon.directory import DirectoryCache, apply_change
from e911d.daemon.http import HttpDeps, HttpServer
from e911d.daemon.metrics import Metrics
from e911d.daemon.model import ResolveReason
from e911d.daemon.notify import (
    DirectoryListener,
    ListenerConfig,
    ListenerHooks,
    Notice,
    PendingChanges,
)
from e911d.daemon.offsets import load_offsets, store_offsets
from e911d.daemon.sessions import SessionStore, fold_session_events
from e911d.schedulers import CheckSchedule, Ticker

log = structlog.get_logger("e911d.app")
ALERT_SQL = load_queries("alerts.sql")
REEVALUATE_SQL = load_queries("reevaluate.sql")
# Catching up after the listener reconnects reads changes from a little before the
# last moment it was known healthy: a row's updated_at is its transaction's start.
CATCH_UP_MARGIN = dt.timedelta(seconds=60)
CE_HEADERS = [("content-type", b"application/cloudevents+json")]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FatalError(Exception):
    """A component failed in a way the daemon cannot recover from by itself."""


def kafka_options(settings: Settings) -> dict[str, Any]:
    k = settings.kafka
    opts: dict[str, Any] = {
        "bootstrap_servers": k.bootstrap_servers,
        "client_id": k.client_id,
        "security_protocol": k.security_protocol,
        "request_timeout_ms": k.request_timeout_ms,
    }
    if k.sasl_mechanism is not None:
        opts["sasl_mechanism"] = k.sasl_mechanism
        opts["sasl_plain_username"] = k.sasl_username
        opts["sasl_plain_password"] = (
            k.sasl_password.get_secret_value() if k.sasl_password else None
        )
    return opts


@dataclass(slots=True)
class Ownership:
    """Which session-event partitions this instance owns, and whether they are loaded."""

    partitions: set[int] = field(default_factory=set)
    loaded: bool = False


class App:
    """One e911d instance."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        c = settings.checks
        self.schedule = CheckSchedule(c.initial_delay_seconds, c.interval_seconds)
        self.ownership = Ownership()
        self.cache = DirectoryCache()
        self.sessions = SessionStore()
        topics = settings.kafka.topics
        self.alerts = AlertStore(topics.alerts, settings.kafka.source)
        self.checks = CheckRunner(
            self.alerts, self.cache, CheckConfig(dt.timedelta(seconds=c.dismiss_snooze_seconds))
        )
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: ConsumerLoop | None = None
        self.http: HttpServer | None = None
        self.ticker = Ticker(on_job_error=self._job_failed)
        self.started = asyncio.Event()
        self._stop = asyncio.Event()
        self._fatal: BaseException | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._relay_wake = asyncio.Event()
        self._tick_lock = asyncio.Lock()
        self._sweep_lock = asyncio.Lock()
        self._relay_lock = asyncio.Lock()
        self._reevaluate_lock = asyncio.Lock()
        self._pending = PendingChanges()
        self._notice_wake = asyncio.Event()
        self._first_notice_at: float | None = None
        self.listener: DirectoryListener | None = None
        self._kafka_ok = False
        self._db_ok = False
        self._ttl = dt.timedelta(seconds=c.session_ttl_seconds)

    # ---- lifecycle ------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Run until asked to stop (0) or until a component fails (1)."""
        async with AsyncExitStack() as stack:
            # A stop request during start-up (a database still unreachable, say) must
            # not wait for every retry to run out.
            starting = asyncio.create_task(self._start(stack), name="e911d-start")
            stopping = asyncio.create_task(self._stop.wait(), name="e911d-stop-wait")
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await starting
                log.info("daemon_stopped", during="startup")
                return 0
            exc = starting.exception()
            if exc is not None:
                log.error("startup_failed", error=str(exc), error_type=type(exc).__name__)
                return 1
            self.started.set()
            log.info(
                "daemon_started",
                http_port=self.http.port if self.http else None,
                initial_delay_seconds=self.settings.checks.initial_delay_seconds,
                interval_seconds=self.settings.checks.interval_seconds,
            )
            await self._stop.wait()
            log.info("daemon_stopping", reason="fatal" if self._fatal else "requested")
            await self._graceful_stop()
        if self._fatal is not None:
            log.error("daemon_failed", error=repr(self._fatal))
            return 1
        log.info("daemon_stopped")
        return 0

    async def _start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        self.http = HttpServer(
            HttpDeps(self.metrics.registry, self.readiness, lambda: self._fatal is None),
            s.http.host,
            s.http.port,
        )
        await self.http.start()
        stack.push_async_callback(self.http.stop)

        self.pool = await connect_pool(
            PoolConfig(
                s.postgres.dsn.get_secret_value(),
                s.postgres.pool_min_size,
                s.postgres.pool_max_size,
                s.postgres.command_timeout_seconds,
            )
        )
        stack.push_async_callback(self._close_pool)
        self._db_ok = True
        if s.migrate_on_start:
            async with self.pool.acquire() as conn:
                await migrate(conn)
        self.listener = DirectoryListener(
            ListenerConfig(
                s.postgres.dsn.get_secret_value(),
                keepalive_seconds=s.checks.listener_keepalive_seconds,
            ),
            ListenerHooks(self._on_notice, self.catch_up, self.metrics.listener_up.set),
        )
        await self.listener.connect_once()
        stack.push_async_callback(self.listener.close)

        opts = kafka_options(s)
        topics = s.kafka.topics
        if s.kafka.create_topics:
            await ensure_topics(
                opts,
                [topics.session_events, topics.directory_events, topics.alerts, topics.dead_letter],
                s.kafka.topic_partitions,
                s.kafka.replication_factor,
            )
        self.producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=s.kafka.enable_idempotence,
            max_request_size=max(1_048_576, s.kafka.max_event_bytes * 2),
            linger_ms=5,
            **opts,
        )
        await self._start_kafka_client("producer", self.producer.start)
        stack.push_async_callback(self._stop_producer)
        self._kafka_ok = True

        c = s.checks
        self.consumer = ConsumerLoop(
            ConsumerConfig(
                session_topic=topics.session_events,
                directory_topic=topics.directory_events,
                dead_letter_topic=topics.dead_letter,
                group_id=s.kafka.group_id,
                max_event_bytes=s.kafka.max_event_bytes,
                poll_max_records=s.kafka.poll_max_records,
                poll_timeout_ms=s.kafka.poll_timeout_ms,
                max_clock_skew=dt.timedelta(seconds=c.max_clock_skew_seconds),
                kafka_options={
                    **opts,
                    "session_timeout_ms": s.kafka.session_timeout_ms,
                    "heartbeat_interval_ms": s.kafka.heartbeat_interval_ms,
                },
            ),
            ConsumerHandlers(
                on_batch=self.apply_batch,
                on_assigned=self.on_assigned,
                on_revoked=self.on_revoked,
                on_event=self._count_event,
                on_invalid=self._count_invalid,
                on_listener_error=self._listener_failed,
            ),
            self.producer,
        )
        await self._start_kafka_client("consumer", self.consumer.start)
        stack.push_async_callback(self.consumer.close)

        self.ticker.every("checks", c.tick_seconds, self.tick)
        self.ticker.every("sweep", c.sweep_interval_seconds, self.sweep)
        self.ticker.every("gauges", min(5.0, c.sweep_interval_seconds), self.update_gauges)
        self.ticker.start()
        stack.callback(self.ticker.shutdown)

        self._spawn("consumer", self.consumer.run())
        self._spawn("relay", self._relay_loop())
        self._spawn("listener", self.listener.run(self._stop))
        self._spawn("reevaluate", self._reevaluate_loop())

    async def _start_kafka_client(self, what: str, start: Callable[[], Awaitable[None]]) -> None:
        delay = 0.2
        for attempt in range(1, 31):
            try:
                await start()
                return
            except KafkaConnectionError as exc:
                if attempt == 30:
                    raise
                log.warning("kafka_connect_retry", client=what, attempt=attempt, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _spawn(self, name: str, coro: Awaitable[None]) -> None:
        async def wrapped() -> None:
            await coro

        task = asyncio.create_task(wrapped(), name=f"e911d-{name}")
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._task_done(name, t))

    def _task_done(self, name: str, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._fail(f"task {name} died", exc)
        elif not self._stop.is_set():
            self._fail(f"task {name} ended early", FatalError(name))

    def _fail(self, what: str, exc: BaseException) -> None:
        if self._stop.is_set() and self._fatal is None:
            # Work cut short by a requested stop is redone by whoever owns the
            # partition next (offsets and schedules live in PostgreSQL): not a failure.
            log.warning("component_stopped_with_error", component=what, error=repr(exc))
            return
        log.error("component_failed", component=what, error=repr(exc))
        if self._fatal is None:
            self._fatal = exc
        self._stop.set()

    def _job_failed(self, job: str, exc: BaseException) -> None:
        self._fail(f"job {job}", exc)

    def _listener_failed(self, stage: str, exc: BaseException) -> None:
        self.metrics.rebalance_errors.inc()
        self._fail(f"rebalance listener ({stage})", exc)

    async def _graceful_stop(self) -> None:
        """Stop fetching, finish in-flight work within the timeout, then cancel the rest."""
        deadline = time.monotonic() + self.settings.shutdown_timeout_seconds
        if self.consumer is not None:
            self.consumer.request_stop()
        self.ticker.shutdown()
        self._notice_wake.set()  # the re-evaluation loop sees the stop and returns
        consumer_task = self._tasks.get("consumer")
        if consumer_task is not None and not consumer_task.done():
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(
                    asyncio.shield(consumer_task), max(0.1, deadline - time.monotonic() - 2)
                )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.1, deadline - time.monotonic() - 1.5)):
                # Jobs in flight (a tick, a sweep) finish; no new one starts (_stop is set).
                for lock in (self._tick_lock, self._sweep_lock, self._reevaluate_lock):
                    async with lock:
                        pass
                try:
                    await self.relay_once()
                except (KafkaError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    # Left in the outbox: the next owner of the partition publishes it.
                    log.warning("final_relay_failed", error=repr(exc))
        for name, task in self._tasks.items():
            if not task.done():
                log.info("task_cancelled", task=name)
                task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _close_pool(self) -> None:
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), 2)

    async def _stop_producer(self) -> None:
        if self.producer is not None:
            await close_within(self.producer.stop(), 2.0, "producer")

    # ---- consumed events ------------------------------------------------------------

    def _count_event(self, topic: str, type_: str) -> None:
        self.metrics.events.labels(topic=topic, type=type_).inc()

    def _count_invalid(self, topic: str, partition: int, offset: int, invalid: Invalid) -> None:
        self.metrics.events_invalid.labels(reason=str(invalid.reason)).inc()
        log.warning(
            "event_invalid",
            topic=topic,
            partition=partition,
            offset=offset,
            reason=str(invalid.reason),
            detail=invalid.detail,
        )

    async def apply_batch(self, batch: InboundBatch) -> None:
        """One transaction: directory changes, session changes, their alerts, offsets."""
        assert self.pool is not None  # noqa: S101
        pool = self.pool
        started_at = time.perf_counter()
        now = utcnow()

        async def tx() -> tuple[Any, list[ResolvedAlert]]:
            async with pool.acquire() as conn, conn.transaction():
                for ev in batch.directory_events:
                    await apply_change(conn, ev.change)
                ids = sorted({e.session_id for _, e in batch.session_events})
                existing = await self.sessions.lock(conn, ids) if ids else {}
                fold = fold_session_events(existing, batch.session_events, now, self._ttl)
                changed = [r for sid, r in fold.rows.items() if existing.get(sid) != r]
                await self.sessions.save(conn, changed)
                resolved = await self.alerts.resolve_sessions(
                    conn, sorted(fold.ended), ResolveReason.SESSION_ENDED, now
                )
                for d in fold.dismissals:
                    hit = await self.alerts.dismiss(conn, d.session_id, d.alert_id, now)
                    if hit is None:
                        fold.ignored += 1
                        fold.dismissals_ignored += 1
                    else:
                        resolved.append(hit)
                await store_offsets(conn, self.settings.kafka.group_id, batch.next_offsets)
                return fold, resolved

        try:
            fold, resolved = await retrying("apply_batch", tx, stop=self._stop)
        except DatabaseError as exc:
            if exc.transient:
                raise
            raise BatchRejected(str(exc)) from exc
        wall = time.time()
        for sid in fold.ended:
            self.schedule.remove(sid)
            log.debug("session_ended", session_id=sid)
        for sid in fold.started:
            row = fold.rows[sid]
            if row.partition in self.ownership.partitions:
                self.schedule.add(sid, row.logged_in_at.timestamp(), row.partition, wall)
                log.debug(
                    "session_started",
                    session_id=sid,
                    account_id=row.account_id,
                    user_id=row.user_id,
                    logged_in_at=row.logged_in_at.isoformat(),
                )
        self.metrics.sessions_active.set(len(self.schedule))
        self._record_resolved(resolved)
        if fold.dismissals_ignored:
            self.metrics.dismissals_ignored.inc(fold.dismissals_ignored)
        if resolved:
            self._relay_wake.set()
        kind = "directory" if batch.directory_events else "sessions"
        self.metrics.batch_seconds.labels(kind=kind).observe(time.perf_counter() - started_at)

    def _record_resolved(self, resolved: Sequence[ResolvedAlert]) -> None:
        for a in resolved:
            self.metrics.alerts_resolved.labels(reason=str(a.reason)).inc()
            log.info(
                "alert_resolved",
                alert_id=a.alert_id,
                session_id=a.session.session_id,
                account_id=a.session.account_id,
                user_id=a.session.user_id,
                reason=str(a.reason),
            )

    async def on_assigned(self, tps: set[TP]) -> dict[TP, int]:
        assert self.pool is not None  # noqa: S101
        pool = self.pool
        session_topic = self.settings.kafka.topics.session_events
        parts = {p for t, p in tps if t == session_topic}

        async def load() -> tuple[dict[TP, int], list[tuple[str, dt.datetime, int]]]:
            async with pool.acquire() as conn:
                offsets = await load_offsets(conn, self.settings.kafka.group_id, tps)
                rows = await self.sessions.active_in_partitions(conn, sorted(parts))
                return offsets, rows

        offsets, rows = await retrying("load_partitions", load, stop=self._stop)
        self.ownership.partitions = set(parts)
        now = time.time()
        for sid, logged_in_at, part in rows:
            self.schedule.add(sid, logged_in_at.timestamp(), part, now)
        self.ownership.loaded = True
        self.metrics.partitions_owned.set(len(parts))
        self.metrics.sessions_active.set(len(self.schedule))
        log.info("partitions_loaded", partitions=sorted(parts), sessions=len(rows))
        self._relay_wake.set()
        return offsets

    async def on_revoked(self, tps: set[TP]) -> None:
        session_topic = self.settings.kafka.topics.session_events
        parts = {p for t, p in tps if t == session_topic}
        self.ownership.loaded = False
        self.ownership.partitions -= parts
        dropped = self.schedule.drop_partitions(parts)
        self.metrics.sessions_active.set(len(self.schedule))
        log.info("partitions_revoked", partitions=sorted(parts), sessions=dropped)

    # ---- checks ---------------------------------------------------------------------

    async def tick(self) -> None:
        """Drain every due session in chunks; one transaction per chunk."""
        if self._stop.is_set():
            return
        async with self._tick_lock:
            batch_size = self.settings.checks.batch_size
            while not self._stop.is_set():
                now = time.time()
                due = self.schedule.pop_due(now, batch_size)
                if not due:
                    return
                owned = [d for d in due if d.partition in self.ownership.partitions]
                await self.check_sessions([d.session_id for d in owned])
                ran = time.time()
                for d in owned:
                    self.metrics.check_lateness.observe(max(0.0, ran - d.due_at))
                if len(due) < batch_size:
                    return

    async def check_sessions(self, session_ids: Sequence[str]) -> CheckReport:
        assert self.pool is not None  # noqa: S101
        pool = self.pool
        if not session_ids:
            return CheckReport()

        async def tx() -> CheckReport:
            async with pool.acquire() as conn, conn.transaction():
                return await self.checks.run(conn, session_ids, utcnow())

        report = await retrying("checks", tx, stop=self._stop)
        for outcome, n in report.outcomes.items():
            self.metrics.checks.labels(outcome=outcome).inc(n)
        for a in report.raised:
            self.metrics.alerts_raised.inc()
            rec = a.data["recommendation"]
            log.info(
                "alert_raised",
                alert_id=a.alert_id,
                session_id=a.session.session_id,
                account_id=a.session.account_id,
                user_id=a.session.user_id,
                kind=rec["kind"],
                recommended=[loc["location_id"] for loc in rec["locations"]],
            )
        self._record_resolved(report.resolved)
        if report.raised or report.resolved:
            self._relay_wake.set()
        return report

    async def sweep(self) -> None:
        """Expire idle sessions, purge old tombstones and resolved alerts."""
        if self._stop.is_set():
            return
        async with self._sweep_lock:
            await self._sweep()

    async def _sweep(self) -> None:
        assert self.pool is not None  # noqa: S101
        pool = self.pool
        now = utcnow()
        parts = sorted(self.ownership.partitions)
        retention = dt.timedelta(seconds=self.settings.checks.alert_retention_seconds)

        async def tx() -> tuple[list[str], list[ResolvedAlert]]:
            async with pool.acquire() as conn, conn.transaction():
                expired = await self.sessions.expire(conn, parts, now - self._ttl) if parts else []
                resolved = await self.alerts.resolve_sessions(
                    conn, expired, ResolveReason.SESSION_ENDED, now
                )
                await self.sessions.purge_tombstones(conn, now - self._ttl)
                await self.alerts.purge(conn, now - max(retention, self._ttl))
                return expired, resolved

        expired, resolved = await retrying("sweep", tx, stop=self._stop)
        for sid in expired:
            self.schedule.remove(sid)
            log.info("session_expired", session_id=sid)
        self._record_resolved(resolved)
        if resolved:
            self._relay_wake.set()
        self.metrics.sessions_active.set(len(self.schedule))

    # ---- directory notices: re-evaluate at once ---------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        self.metrics.directory_notices.labels(kind=notice.kind).inc()
        self._pending.add(notice)
        if self._first_notice_at is None:
            self._first_notice_at = time.perf_counter()
        self._notice_wake.set()

    async def catch_up(self, healthy_at: dt.datetime | None) -> None:
        """After a reconnection: treat whatever changed while deaf as just notified."""
        if healthy_at is None or self.pool is None:
            return
        self.cache.clear()
        try:
            async with asyncio.timeout(10), self.pool.acquire() as conn:
                rows = await conn.fetch(
                    REEVALUATE_SQL["changed_since"], healthy_at - CATCH_UP_MARGIN
                )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            # The scheduled checks still see every change, within one interval.
            self.metrics.db_errors.labels(operation="catch_up").inc()
            log.warning("directory_catch_up_failed", error=repr(exc))
            return
        for r in rows:
            self._on_notice(Notice(r["kind"], r["account_id"], r["user_id"]))
        log.info("directory_caught_up", changes=len(rows))

    async def _reevaluate_loop(self) -> None:
        debounce = self.settings.checks.reevaluate_debounce_seconds
        while True:
            await self._notice_wake.wait()
            if self._stop.is_set():
                return
            if debounce:
                await asyncio.sleep(debounce)  # let a burst of notices arrive: one pass
            self._notice_wake.clear()
            changes = self._pending.drain()
            first, self._first_notice_at = self._first_notice_at, None
            if not changes:
                continue
            async with self._reevaluate_lock:
                if self._stop.is_set():
                    return
                try:
                    await self.reevaluate(changes)
                except DatabaseError as exc:
                    if not exc.transient:
                        raise
                    # The scheduled checks pick these sessions up within one interval.
                    self.metrics.db_errors.labels(operation="reevaluate").inc()
                    log.warning("reevaluation_failed", error=str(exc))
                    continue
            if first is not None:
                self.metrics.reevaluation_delay.observe(time.perf_counter() - first)

    async def reevaluate(self, changes: PendingChanges) -> int:
        """Check at once the owned sessions a directory change affects; schedules stay put."""
        assert self.pool is not None  # noqa: S101
        pool = self.pool
        if changes.everything:
            self.cache.clear()
        self.cache.invalidate(changes.accounts)
        parts = sorted(self.ownership.partitions)
        if not parts or not (changes.everything or changes.accounts or changes.users):
            return 0
        users = sorted(changes.users)
        # A session before its first check is left to it: the initial delay lets a
        # fresh login settle (VPN, roaming) before anyone is told they are elsewhere.
        first_due = utcnow() - dt.timedelta(seconds=self.settings.checks.initial_delay_seconds)

        async def find() -> list[asyncpg.Record]:
            async with pool.acquire() as conn:
                rows: list[asyncpg.Record] = []
                if changes.everything:
                    rows += await conn.fetch(
                        REEVALUATE_SQL["sessions_of_partitions"], parts, first_due
                    )
                    return rows
                if changes.accounts:
                    rows += await conn.fetch(
                        REEVALUATE_SQL["sessions_of_accounts"],
                        sorted(changes.accounts),
                        parts,
                        first_due,
                    )
                if users:
                    rows += await conn.fetch(
                        REEVALUATE_SQL["sessions_of_users"],
                        [a for a, _ in users],
                        [u for _, u in users],
                        parts,
                        first_due,
                    )
                return rows

        ordered = sorted(
            {r["session_id"] for r in await retrying("reevaluate_find", find, stop=self._stop)}
        )
        size = self.settings.checks.batch_size
        for i in range(0, len(ordered), size):
            await self.check_sessions(ordered[i : i + size])
        self.metrics.reevaluations.inc(len(ordered))
        if ordered:
            log.info(
                "sessions_reevaluated",
                sessions=len(ordered),
                accounts=len(changes.accounts),
                users=len(users),
            )
        return len(ordered)

    # ---- outbox relay ---------------------------------------------------------------

    async def _relay_loop(self) -> None:
        interval = self.settings.checks.relay_interval_seconds
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._relay_wake.wait(), interval)
            self._relay_wake.clear()
            try:
                await self.relay_once()
            except KafkaError as exc:
                self._kafka_ok = False
                self.metrics.kafka_errors.labels(operation="relay").inc()
                log.warning("relay_failed", error=repr(exc))
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                self.metrics.db_errors.labels(operation="relay").inc()
                log.warning("relay_failed", error=repr(exc))

    async def relay_once(self, limit: int = 1_000) -> int:
        """Publish pending alert events of the owned partitions, in order, then delete them."""
        assert self.pool is not None and self.producer is not None  # noqa: S101
        producer = self.producer
        total = 0
        async with self._relay_lock:
            while True:
                parts = sorted(self.ownership.partitions)
                if not parts:
                    return total
                async with self.pool.acquire() as conn, conn.transaction():
                    rows = await conn.fetch(ALERT_SQL["outbox_batch"], parts, limit)
                    if not rows:
                        return total
                    futures = [
                        await producer.send(
                            r["topic"], value=r["value"], key=r["key"], headers=CE_HEADERS
                        )
                        for r in rows
                    ]
                    await asyncio.gather(*futures)
                    await conn.execute(ALERT_SQL["outbox_delete"], [r["id"] for r in rows])
                total += len(rows)
                self.metrics.alerts_published.inc(len(rows))
                self._kafka_ok = True
                if len(rows) < limit:
                    return total

    # ---- health ---------------------------------------------------------------------

    async def update_gauges(self) -> None:
        assert self.pool is not None  # noqa: S101
        if self._stop.is_set():
            return
        try:
            async with self.pool.acquire() as conn:
                parts = sorted(self.ownership.partitions)
                self.metrics.alerts_open.set(await self.alerts.count_open(conn, parts))
                self.metrics.outbox_pending.set(await conn.fetchval(ALERT_SQL["outbox_pending"]))
            self._db_ok = True
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            self._db_ok = False
            self.metrics.db_errors.labels(operation="gauges").inc()
            log.warning("database_probe_failed", error=repr(exc))
        self.metrics.db_up.set(1 if self._db_ok else 0)
        await self._update_lag()
        self.metrics.kafka_up.set(1 if self._kafka_ok else 0)

    async def _update_lag(self) -> None:
        if self.consumer is None:
            return
        consumer = self.consumer.consumer
        lag: dict[str, int] = {}
        try:
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                if high is None:
                    continue
                pos = await consumer.position(tp)
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - pos)
        except (KafkaError, AssertionError, TypeError) as exc:
            log.debug("lag_unavailable", error=repr(exc))
            return
        for topic, value in lag.items():
            self.metrics.consumer_lag.labels(topic=topic).set(value)

    async def _probe_kafka(self) -> bool:
        if self.producer is None:
            return False
        try:
            # A metadata round trip: cached metadata would say "up" for a dead broker.
            metadata = await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 2)
            ok = bool(metadata.brokers())
        except (KafkaError, TimeoutError, OSError):
            ok = False
        self._kafka_ok = ok
        return ok

    async def _probe_db(self) -> bool:
        if self.pool is None:
            return False
        try:
            async with asyncio.timeout(2):
                async with self.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
            ok = True
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            ok = False
        self._db_ok = ok
        return ok

    async def readiness(self) -> tuple[bool, dict[str, bool]]:
        checks = {
            "database": await self._probe_db(),
            "kafka": await self._probe_kafka(),
            "partitions_loaded": self.ownership.loaded and self.started.is_set(),
            "directory_listener": self.listener is not None and self.listener.connected.is_set(),
            "running": self._fatal is None and not self._stop.is_set(),
        }
        return all(checks.values()), checks

    def sessions_scheduled(self) -> int:
        return len(self.schedule)
