"""The record of networks nobody configured, written off the check path
(docs/spec.md#networks-nobody-configured).

The checks service hands over what each database check decided; the sessions no
group located that are new today (:mod:`e911d.daemon.core.unlocated`) go out in bulk
from a writer task of their own, as the sessions-checked record does
(:mod:`e911d.daemon.services.checks`): no check waits for it, the claims made while
it writes go out together in its next statement, each statement is one attempt
bounded by a timeout, and a failure leaves the sessions to a later check (after a
pause). It is evidence for a report, never on an alert's path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from collections.abc import Collection
from typing import Final

import structlog

from e911d.daemon.core.checked_today import due_for_pruning
from e911d.daemon.core.network_key import NetworkKey
from e911d.daemon.core.unlocated import PAUSE, SightingClaim, UnlocatedToday
from e911d.daemon.services.deps import Runtime, utcnow
from e911d.daemon.store.check_batches import CheckReport
from e911d.daemon.store.db import DatabaseError, errors
from e911d.daemon.store.unconfigured_networks import record_sightings

log = structlog.get_logger(__name__)
# As for the sessions-checked record: a write waits no longer, and one statement
# writes at most this many rows.
RECORD_TIMEOUT: Final = 2.0
RECORD_ROWS: Final = 10_000


class UnconfiguredRecorder:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        interval = dt.timedelta(seconds=rt.settings.checks.interval_seconds)
        self._today = UnlocatedToday(pause=min(PAUSE, interval))
        self._unwritten: deque[SightingClaim] = deque()
        self._writer: asyncio.Task[None] | None = None

    def due(self) -> Collection[str]:
        """The sessions memory must not decide now: known unlocated but not yet
        recorded today, so sent to the database once a day. Called once per chunk
        (it starts the new UTC day, if it is one); valid until the chunk is decided."""
        self._today.roll(utcnow())
        return self._today.due

    def recorded(self, session_id: str, key: NetworkKey) -> bool:
        """Whether the session's sighting on ``key`` is recorded today (or claimed)."""
        return self._today.recorded(session_id, key)

    def decided(self, report: CheckReport) -> None:
        """Claim the unlocated sessions of a database check for the writer task."""
        claim = self._today.claim(report.checked, report.unlocated, utcnow())
        schedule = self._rt.schedule
        if due_for_pruning(len(self._today), len(schedule)):
            self._today.prune(schedule)
        if not claim:
            return
        self._unwritten.append(claim)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="unconfigured_networks")

    async def _write(self) -> None:
        """Write the claims, one day per statement, up to RECORD_ROWS; one attempt
        each: a failure releases its claims. Never raises."""
        rt = self._rt
        while self._unwritten:
            claims = [self._unwritten.popleft()]
            while (
                self._unwritten
                and self._unwritten[0].day == claims[0].day
                and sum(map(len, claims)) < RECORD_ROWS
            ):
                claims.append(self._unwritten.popleft())
            sightings = [s for c in claims for s in c.sightings]
            try:
                with errors("unconfigured_networks"):
                    async with asyncio.timeout(RECORD_TIMEOUT), rt.pool.acquire() as conn:
                        await record_sightings(conn, claims[0].day, sightings)
                rt.metrics.unconfigured_sightings.inc(len(sightings))
            except DatabaseError as exc:
                now = utcnow()
                for claim in claims:
                    self._today.failed(claim, now)
                rt.metrics.db_errors.labels(operation="unconfigured_networks").inc()
                log.warning(
                    "unconfigured_networks_write_failed", sightings=len(sightings), error=str(exc)
                )

    async def drain(self) -> None:
        """Wait for the writer, which the timeout bounds."""
        if self._writer is not None:
            await self._writer
