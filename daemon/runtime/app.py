"""The composition root: builds the components and services, runs them, stops them.

Nothing here does the daemon's work. Each component (HTTP server, pool, producer,
LISTEN connection, consumer) is entered on one exit stack and closes itself; each
job is a service in :mod:`e911d.daemon.services` with its own loop and drain; the
:class:`~e911d.daemon.runtime.supervisor.Supervisor` owns the tasks, the first failure and
the deadline. docs/architecture.md draws who calls whom.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import structlog

from e911d.config import Settings
from e911d.consumers.loop import ConsumerLoop
from e911d.daemon.core.memo import MemoBook
from e911d.daemon.kafka.clients import (
    consumer_config,
    kafka_options,
    open_producer,
    prepare_topics,
    probe_broker,
    start_client,
)
from e911d.daemon.runtime.bundle import Services
from e911d.daemon.runtime.geoip import open_geoip
from e911d.daemon.runtime.http import HttpDeps, HttpServer
from e911d.daemon.runtime.logs import instance_id, log_starting
from e911d.daemon.runtime.supervisor import Supervisor
from e911d.daemon.services.checks import Checks
from e911d.daemon.services.deps import Health, Ownership, Runtime
from e911d.daemon.services.housekeeping import Housekeeping, Probes
from e911d.daemon.services.ingest import Ingest
from e911d.daemon.services.metrics import Metrics
from e911d.daemon.services.reevaluation import Reevaluation
from e911d.daemon.services.relay import Relay
from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.db import PoolConfig, open_pool, prepare_schema
from e911d.daemon.store.directory import DirectoryCache
from e911d.daemon.store.limits import ConnectionLimits
from e911d.daemon.store.notify import DirectoryListener, ListenerConfig
from e911d.schedulers import CheckSchedule, Ticker

log = structlog.get_logger(__name__)

# The drain leaves at least this much of the shutdown timeout to the consumer's leave
# of its group (which waits out a join the broker holds, within what is left:
# consumers/closing.py); the producer and the pool close within their own bounds.
CLOSE_RESERVE_SECONDS = 1.5
# Cancelled tasks' time to unwind; a stuck one ends when the pool is aborted (open_pool).
CANCEL_SECONDS = 0.5


class App:
    """One e911d instance."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        topics = settings.kafka.topics
        self.metrics.known_topics(topics.session_events, topics.directory_events)
        c = settings.checks
        self.schedule = CheckSchedule(c.initial_delay_seconds, c.interval_seconds)
        self.ownership = Ownership()
        self.cache = DirectoryCache()
        self.supervisor = Supervisor()
        self.started = asyncio.Event()
        self.http = HttpServer(
            HttpDeps(self.metrics.registry, self._readiness, self.supervisor.alive),
            settings.http.host,
            settings.http.port,
        )
        self._services: Services | None = None
        self.instance_id = instance_id()

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("the daemon has not started")
        return self._services

    @property
    def listener(self) -> DirectoryListener:
        return self.services.listener

    def request_stop(self) -> None:
        self.supervisor.request_stop()

    def sessions_scheduled(self) -> int:
        return len(self.schedule)

    async def _readiness(self) -> tuple[bool, dict[str, bool]]:
        if self._services is None:
            return False, {"started": False}
        return await self._services.housekeeping.readiness()

    async def run(self) -> int:
        """Run until asked to stop (0) or until a component fails (1)."""
        sup = self.supervisor
        log_starting(self.settings, self.instance_id)
        async with AsyncExitStack() as stack:
            try:
                services = await sup.start(self._start(stack))
            except Exception as exc:
                log.error("startup_failed", error=str(exc), error_type=type(exc).__name__)
                return 1
            if services is None:
                log.info("daemon_stopped", during="startup")
                return 0
            self._services = services
            self.started.set()
            log.info(
                "daemon_started",
                http_port=self.http.port,
                initial_delay_seconds=self.settings.checks.initial_delay_seconds,
                interval_seconds=self.settings.checks.interval_seconds,
            )
            try:
                await sup.stopping.wait()
                log.info("daemon_stopping", reason="fatal" if sup.fatal else "requested")
                within = max(0.5, self.settings.shutdown_timeout_seconds - CLOSE_RESERVE_SECONDS)
                await sup.drain(services.drain_steps(), within)
            finally:
                # After the drain, and also on a forced stop: no loop may still use a
                # client that the exit stack is about to close.
                await sup.cancel_all(within=CANCEL_SECONDS)
        if sup.fatal is not None:
            log.error("daemon_failed", error=repr(sup.fatal))
            return 1
        log.info("daemon_stopped")
        return 0

    async def _start(self, stack: AsyncExitStack) -> Services:
        s, sup = self.settings, self.supervisor
        stop = sup.stopping
        kafka_options(s)  # unusable TLS files end the start before anything connects
        geo = stack.enter_context(open_geoip(s.geoip, self.metrics.geoip_lookups))
        await stack.enter_async_context(self.http)
        pg = s.postgres
        dsn = pg.dsn.get_secret_value()
        limits = ConnectionLimits.of(pg)
        pool_config = PoolConfig(dsn, pg.pool_min_size, pg.pool_max_size, limits=limits)
        pool = await stack.enter_async_context(open_pool(pool_config, stop=stop))
        async with pool.acquire() as conn:
            await prepare_schema(conn, apply=s.migrate_on_start)
        await probe_broker(s, stop)
        await prepare_topics(s, stop)
        producer = await stack.enter_async_context(open_producer(s, stop))
        rt = Runtime(
            s,
            self.metrics,
            pool,
            producer,
            self.schedule,
            self.ownership,
            self.cache,
            AlertStore.of(s),
            MemoBook(self.schedule, s.checks.decide_in_memory),
            Health(database=True, kafka=True),
            stop,
        )
        relay = Relay(rt)
        checks = Checks(rt, relay, geo)
        reevaluation = Reevaluation(rt, checks)
        listener_config = ListenerConfig(
            dsn, s.checks.listener_keepalive_seconds, pg.connect_timeout_seconds, limits=limits
        )
        listener = await stack.enter_async_context(
            DirectoryListener(listener_config, reevaluation.hooks())
        )
        ingest = Ingest(rt, relay, sup.fail)
        consumer = await stack.enter_async_context(
            ConsumerLoop(
                consumer_config(s), ingest.handlers(), producer, start_client("consumer", stop)
            )
        )
        housekeeping = Housekeeping(
            rt,
            relay,
            Probes(
                consumer.consumer, listener.connected, lambda: sup.running and self.started.is_set()
            ),
        )
        ticker = Ticker(on_job_error=lambda job, exc: sup.fail(f"job {job}", exc))
        c = s.checks
        ticker.every("checks", c.tick_seconds, checks.tick)
        ticker.every("sweep", c.sweep_interval_seconds, housekeeping.sweep)
        ticker.every("gauges", min(5.0, c.sweep_interval_seconds), housekeeping.update_gauges)
        ticker.start()
        stack.callback(ticker.shutdown)
        sup.spawn("consumer", consumer.run())
        sup.spawn("relay", relay.run())
        sup.spawn("listener", listener.run(stop))
        sup.spawn("reevaluate", reevaluation.run())
        return Services(
            ingest, checks, reevaluation, relay, housekeeping, consumer, listener, ticker
        )
