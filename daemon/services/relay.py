"""The outbox relay: the only reader of the outbox, and the only publisher of alerts.

An alert transition is committed with its outbox row (see :mod:`e911d.daemon.store.alerts`),
so an alert decided is never lost; this service publishes the rows of the owned
partitions and deletes them once Kafka has acknowledged them. A crash in between
publishes them again: subscribers drop the duplicate by its CloudEvents id. Per key
(the user id) the events leave in the order they were decided, even with several
relays at once (docs/architecture.md#order-on-the-alerts-topic).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import structlog
from aiokafka.errors import KafkaError

from e911d.consumers.envelope import CONTENT_TYPE
from e911d.daemon.kafka.publish import Refused, publish_rows
from e911d.daemon.services.deps import Runtime
from e911d.daemon.store.alerts import RaisedAlert, ResolvedAlert
from e911d.daemon.store.db import DatabaseError, errors
from e911d.daemon.store.outbox import (
    OutboxRow,
    outbox_batch,
    outbox_delete,
    outbox_pending,
    waves,
)

log = structlog.get_logger(__name__)
CE_HEADERS = [("content-type", CONTENT_TYPE.encode())]


class Relay:
    def __init__(self, rt: Runtime, batch_limit: int = 1_000) -> None:
        self._rt = rt
        self._limit = batch_limit
        # Twice the broker's timeout: a live relay's wait for acknowledgements ends
        # sooner; a frozen one's transaction is ended by the server (outbox.sql).
        self._hold_ms = 2 * rt.settings.kafka.request_timeout_ms
        self._wake = asyncio.Event()
        # One publisher at a time, so the rows of a partition leave in order.
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        self._wake.set()

    def decided(
        self, raised: Sequence[RaisedAlert] = (), resolved: Sequence[ResolvedAlert] = ()
    ) -> None:
        """Transitions just committed to the outbox: count them, log them, publish soon."""
        metrics = self._rt.metrics
        # The log line names what the alert lists, not an account's 20,000 locations.
        listed = self._rt.alerts.limit.max_locations
        for a in raised:
            metrics.alerts_raised.inc()
            recommended = a.recommendation.locations
            log.info(
                "alert_raised",
                alert_id=a.alert_id,
                session_id=a.session.session_id,
                account_id=a.session.account_id,
                user_id=a.session.user_id,
                kind=str(a.recommendation.kind),
                recommended=[loc.location_id for loc in recommended[:listed]],
                recommended_total=len(recommended),
            )
        for r in resolved:
            metrics.alerts_resolved.labels(reason=str(r.reason)).inc()
            if r.open_seconds is not None:
                metrics.alert_open_duration.labels(reason=str(r.reason)).observe(r.open_seconds)
            log.info(
                "alert_resolved",
                alert_id=r.alert_id,
                session_id=r.session.session_id,
                account_id=r.session.account_id,
                user_id=r.session.user_id,
                reason=str(r.reason),
            )
        if raised or resolved:
            self.wake()

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Nothing is published inside the block (an operator's or a test's hold)."""
        async with self._lock:
            yield

    async def run(self) -> None:
        interval = self._rt.settings.checks.relay_interval_seconds
        while not self._rt.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.publish_pending(final=False)
            except KafkaError as exc:
                self._rt.health.kafka = False
                self._rt.metrics.kafka_errors.labels(operation="relay").inc()
                log.warning("relay_failed", error=repr(exc))
            except DatabaseError as exc:
                self._rt.metrics.db_errors.labels(operation="relay").inc()
                log.warning("relay_failed", error=str(exc))

    async def drain(self) -> None:
        """The final flush: what was decided before the stop is published now, not by
        whoever owns the partition next."""
        try:
            published = await self.publish_pending(final=True)
        except (KafkaError, DatabaseError) as exc:
            # Left in the outbox: the next owner of the partition publishes it.
            log.warning("final_relay_failed", error=repr(exc))
            return
        log.info("final_relay_done", published=published)

    async def publish_pending(self, *, final: bool = True) -> int:
        """Publish pending alert events of the owned partitions, in order, then delete them.

        Once the daemon is stopping only the final flush publishes (``final``), so
        the loop and the drain never race for the same rows.
        """
        rt = self._rt
        total = 0
        async with self._lock:
            if rt.stopping.is_set() and not final:
                return 0
            while True:
                parts = sorted(rt.ownership.partitions)
                if not parts:
                    break
                with errors("relay"):
                    async with rt.pool.acquire() as conn, conn.transaction():
                        rows = await outbox_batch(conn, parts, self._limit, self._hold_ms)
                        if rows:
                            # In waves, one event per key in flight; a row refused for
                            # its size is given up, not retried for ever in front of
                            # the rest (daemon/kafka/publish.py).
                            refused = await self._publish(rows)
                            await outbox_delete(conn, [r.id for r in rows])
                if not rows:
                    break
                total += len(rows) - len(refused)
                rt.metrics.alerts_published.inc(len(rows) - len(refused))
                if refused:
                    rt.metrics.alerts_refused.labels(reason="too_large").inc(len(refused))
                rt.health.kafka = True
                if len(rows) < self._limit:
                    break
        return total

    async def _publish(self, rows: Sequence[OutboxRow]) -> list[Refused]:
        """Publish rows in waves: the first row of each key, then the second, and so on,
        each wave acknowledged before the next is sent; returns the rows Kafka refused
        for their size (given up: daemon/kafka/publish.py).

        A key never has two events in flight, so whatever the producer does with a
        failed send (retries, an error for one batch and success for the next), an
        event of a session never reaches the topic before the ones decided earlier:
        the first failure ends the batch with its later waves unsent, and the whole
        batch is published again (duplicates keep their ids).
        """
        refused: list[Refused] = []
        for wave in waves(rows):
            refused += await publish_rows(self._rt.producer, wave, CE_HEADERS)
        return refused

    async def pending(self) -> tuple[int, float]:
        """Alert events decided but not yet published, and the oldest one's age in
        seconds (0 when none), for the housekeeping gauges: a count that stays flat
        can hide an outbox that is stuck, its age cannot."""
        with errors("outbox_pending"):
            async with self._rt.pool.acquire() as conn:
                return await outbox_pending(conn)
