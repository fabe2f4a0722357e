"""Housekeeping: session expiry and purges, the gauges, and the readiness probes.

None of this is on an alert's path, but an SRE reads it: the up gauges and /readyz
must say what the dependencies answered just now, not what a cache remembers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from e911d.daemon.core.model import ResolveReason
from e911d.daemon.services.deps import Runtime, learning_config, utcnow
from e911d.daemon.services.inflight import InFlight
from e911d.daemon.services.relay import Relay
from e911d.daemon.store.alerts import ResolvedAlert
from e911d.daemon.store.checked_sessions import purge_checked
from e911d.daemon.store.confirmed_networks import expire as expire_confirmed
from e911d.daemon.store.db import DatabaseError, errors, retrying
from e911d.daemon.store.gauges import accounts_without_locations, ping
from e911d.daemon.store.sessions import SessionStore
from e911d.daemon.store.unconfigured_networks import purge_unconfigured, summarise_days

log = structlog.get_logger(__name__)
# A UTC day's sightings of networks nobody configured are summarised this long after
# the day ended: a write claimed just before midnight lands well within it.
SUMMARY_GRACE = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Probes:
    """What readiness looks at besides the database and the broker."""

    consumer: AIOKafkaConsumer
    listener_connected: asyncio.Event
    running: Callable[[], bool]


class Housekeeping:
    def __init__(self, rt: Runtime, relay: Relay, probes: Probes) -> None:
        self._rt = rt
        self._relay = relay
        self._probes = probes
        self._sessions = SessionStore()
        self._in_flight = InFlight()
        c = rt.settings.checks
        self._ttl = dt.timedelta(seconds=c.session_ttl_seconds)
        self._retention = max(dt.timedelta(seconds=c.alert_retention_seconds), self._ttl)
        self._confirmed_ttl = learning_config(rt.settings).ttl
        self._directory_gauges_due = 0.0  # monotonic time; 0: at the first pass

    async def drain(self) -> None:
        await self._in_flight.idle()

    async def sweep(self) -> None:
        """Expire idle sessions, purge old tombstones, resolved alerts and checked sessions."""
        rt = self._rt
        if rt.stopping.is_set():
            return
        with self._in_flight:
            now = utcnow()
            parts = sorted(rt.ownership.partitions)

            async def tx() -> tuple[list[str], list[ResolvedAlert]]:
                async with rt.pool.acquire() as conn, conn.transaction():
                    expired = (
                        await self._sessions.expire(conn, parts, now - self._ttl) if parts else []
                    )
                    resolved = await self._rt.alerts.resolve_sessions(
                        conn, expired, ResolveReason.SESSION_ENDED, now
                    )
                    await self._sessions.purge_tombstones(conn, now - self._ttl)
                    await self._rt.alerts.purge(conn, now - self._retention)
                    # The sessions-checked record is kept as long as the alert history.
                    await purge_checked(conn, now - self._retention)
                    # Networks users confirmed, confirmed_network_ttl after the last time.
                    forgotten = await expire_confirmed(conn, now - self._confirmed_ttl)
                    if forgotten:
                        log.info("confirmed_networks_expired", entries=forgotten)
                    return expired, resolved

            expired, resolved = await retrying("sweep", tx, stop=rt.stopping)
        for sid in expired:
            rt.schedule.remove(sid)
            log.info("session_expired", session_id=sid)
        self._relay.decided(resolved=resolved)
        rt.metrics.sessions_active.set(len(rt.schedule))
        with self._in_flight:
            await self._summarise_unconfigured(now)

    async def _summarise_unconfigured(self, now: dt.datetime) -> None:
        """Finished days' sightings of networks nobody configured become counts
        (docs/spec.md#networks-nobody-configured); counts older than the alert retention
        go. One attempt: the next sweep does what a failure left."""
        rt = self._rt
        bound = rt.settings.learning.unconfigured_networks_per_account_day
        try:
            with errors("unconfigured_summary"):
                async with rt.pool.acquire() as conn, conn.transaction():
                    summary = await summarise_days(conn, (now - SUMMARY_GRACE).date(), bound)
                    await purge_unconfigured(conn, (now - self._retention).date())
        except DatabaseError as exc:
            rt.metrics.db_errors.labels(operation="unconfigured_summary").inc()
            log.warning("unconfigured_summary_failed", error=str(exc))
            return
        rt.metrics.unconfigured_dropped.inc(summary.dropped)
        if summary.sightings:
            log.info(
                "unconfigured_networks_summarised",
                sightings=summary.sightings,
                networks=summary.kept,
                dropped=summary.dropped,
            )

    async def update_gauges(self) -> None:
        if self._rt.stopping.is_set():
            return
        # In flight like a sweep, so the drain waits for it: a broker probe still
        # running when the producer closes opens a connection nothing closes.
        with self._in_flight:
            await self._gauges()

    async def _gauges(self) -> None:
        rt = self._rt
        rt.metrics.asyncio_tasks.set(len(asyncio.all_tasks()))
        try:
            with errors("gauges"):
                async with rt.pool.acquire() as conn:
                    parts = sorted(rt.ownership.partitions)
                    rt.metrics.alerts_open.set(await rt.alerts.count_open(conn, parts))
                    await self._count_accounts_without_locations(conn)
                pending, oldest_age = await self._relay.pending()
                rt.metrics.outbox_pending.set(pending)
                rt.metrics.outbox_oldest_age.set(oldest_age)
            rt.health.database = True
        except DatabaseError as exc:
            rt.health.database = False
            rt.metrics.db_errors.labels(operation="gauges").inc()
            log.warning("database_probe_failed", error=str(exc))
        rt.metrics.db_up.set(1 if rt.health.database else 0)
        await self._update_lag()
        # Probed here too, not only on /readyz: a broker that died while nothing was
        # published would otherwise stay "up" on the gauge an SRE alerts on.
        if not rt.stopping.is_set():
            await self._probe_kafka()
        rt.metrics.kafka_up.set(1 if rt.health.kafka else 0)
        rt.metrics.ready.set(1 if all(self._checks().values()) else 0)

    async def _count_accounts_without_locations(self, conn: asyncpg.Connection) -> None:
        """The whole directory, not this instance's share: every instance reports the
        same value (aggregate with max, not sum). It reads every account, so it runs
        at the sweep's cadence rather than every gauges pass; an administrator's
        problem does not need a fresher count."""
        now = time.monotonic()
        if now < self._directory_gauges_due:
            return
        self._directory_gauges_due = now + self._rt.settings.checks.sweep_interval_seconds
        count = await accounts_without_locations(conn)
        self._rt.metrics.accounts_without_locations.set(count)

    async def _update_lag(self) -> None:
        consumer = self._probes.consumer
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
            self._rt.metrics.consumer_lag.labels(topic=topic).set(value)

    async def _probe_kafka(self) -> bool:
        try:
            # A metadata round trip: cached metadata would say "up" for a dead broker.
            metadata = await asyncio.wait_for(self._rt.producer.client.fetch_all_metadata(), 2)
            ok = bool(metadata.brokers())
        except (KafkaError, TimeoutError, OSError):
            ok = False
        self._rt.health.kafka = ok
        return ok

    async def _probe_db(self) -> bool:
        try:
            with errors("probe"):
                async with asyncio.timeout(2), self._rt.pool.acquire(timeout=2) as conn:
                    await ping(conn)
            ok = True
        except DatabaseError:
            ok = False
        self._rt.health.database = ok
        return ok

    def _checks(self) -> dict[str, bool]:
        """Readiness from what the dependencies answered last (the probes update it)."""
        return {
            "database": self._rt.health.database,
            "kafka": self._rt.health.kafka,
            "partitions_loaded": self._rt.ownership.loaded,
            "directory_listener": self._probes.listener_connected.is_set(),
            "running": self._probes.running(),
        }

    async def readiness(self) -> tuple[bool, dict[str, bool]]:
        await self._probe_db()
        await self._probe_kafka()
        checks = self._checks()
        ready = all(checks.values())
        self._rt.metrics.ready.set(1 if ready else 0)
        return ready, checks
