"""Re-evaluation: directory notices in, the affected owned sessions checked at once.

A notice only says what changed (a user, an account, everything); the sessions are
found in PostgreSQL and checked by :class:`~e911d.daemon.services.checks.Checks`
against the rows as they are now, so a lost or duplicated notice delays a decision
but never makes it wrong. Notices arriving within the debounce window are merged
into one pass, so a bulk import is one pass per account rather than one per row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence

import structlog

from e911d.daemon.services.checks import Checks
from e911d.daemon.services.deps import Runtime, utcnow
from e911d.daemon.services.inflight import InFlight
from e911d.daemon.store.affected_sessions import affected_sessions
from e911d.daemon.store.db import DatabaseError, retrying
from e911d.daemon.store.notify import ListenerHooks, Notice, PendingChanges

log = structlog.get_logger(__name__)


class Reevaluation:
    def __init__(self, rt: Runtime, checks: Checks) -> None:
        self._rt = rt
        self._checks = checks
        self._pending = PendingChanges()
        self._wake = asyncio.Event()
        self._first_notice_at: float | None = None
        self._in_flight = InFlight()

    def hooks(self) -> ListenerHooks:
        """What the LISTEN connection calls: notices, reconnections, its health."""
        return ListenerHooks(self.on_notice, self.catch_up, self._rt.metrics.listener_up.set)

    def on_notice(self, notice: Notice) -> None:
        self._rt.metrics.directory_notices.labels(kind=notice.kind).inc()
        # Until memory reads the account again (at the next tick), the user's sessions
        # (an account-wide notice: the account's) are decided in PostgreSQL; the
        # re-evaluation below does so at once for the sessions it affects.
        memos = self._rt.memos
        if notice.kind == "user" and notice.account_id is not None and notice.user_id:
            memos.user_changed(notice.account_id, notice.user_id)
        else:
            memos.account_changed(None if notice.kind == "all" else notice.account_id)
        self._pending.add(notice)
        if self._first_notice_at is None:
            self._first_notice_at = time.perf_counter()
        self._wake.set()

    async def catch_up(self, missed: Sequence[Notice] | None) -> None:
        """After a reconnection: treat whatever changed while deaf as just notified.

        ``missed`` is every account changed since the listener last proved it heard
        everything (read by transaction id, see daemon/store/missed_changes.py); None
        on the first connection, when there is nothing to catch up on.
        """
        if missed is None:
            return
        rt = self._rt
        rt.cache.clear()
        rt.memos.account_changed(None)
        for notice in missed:
            self.on_notice(notice)
        log.info("directory_caught_up", changes=len(missed))

    async def run(self) -> None:
        rt = self._rt
        debounce = rt.settings.checks.reevaluate_debounce_seconds
        while True:
            await self._wake.wait()
            if rt.stopping.is_set():
                return
            if debounce:
                await asyncio.sleep(debounce)  # let a burst of notices arrive: one pass
            self._wake.clear()
            changes = self._pending.drain()
            first, self._first_notice_at = self._first_notice_at, None
            if not changes:
                continue
            with self._in_flight:
                if rt.stopping.is_set():
                    return
                try:
                    await self.reevaluate(changes)
                except DatabaseError as exc:
                    if not exc.transient:
                        raise
                    # The scheduled checks pick these sessions up within one interval.
                    rt.metrics.db_errors.labels(operation="reevaluate").inc()
                    log.warning("reevaluation_failed", error=str(exc))
                    continue
            if first is not None:
                rt.metrics.reevaluation_delay.observe(time.perf_counter() - first)

    async def drain(self) -> None:
        """Wait for the pass in hand; the loop sees the stop and returns."""
        self._wake.set()
        await self._in_flight.idle()

    async def reevaluate(self, changes: PendingChanges) -> int:
        """Check at once the owned sessions a directory change affects; schedules stay put."""
        rt = self._rt
        if changes.everything:
            rt.cache.clear()
        rt.cache.invalidate(changes.accounts)
        parts = sorted(rt.ownership.partitions)
        if not parts or not (changes.everything or changes.accounts or changes.users):
            return 0
        users = sorted(changes.users)
        # A session before its first check is left to it: the initial delay lets a
        # fresh login settle (VPN, roaming) before anyone is told they are elsewhere.
        first_due = utcnow() - dt.timedelta(seconds=rt.settings.checks.initial_delay_seconds)

        async def find() -> list[str]:
            async with rt.pool.acquire() as conn:
                return await affected_sessions(conn, changes, parts, first_due)

        ordered = await retrying("reevaluate_find", find, stop=rt.stopping)
        size = rt.settings.checks.batch_size
        for i in range(0, len(ordered), size):
            await self._checks.check(ordered[i : i + size])
        rt.metrics.reevaluations.inc(len(ordered))
        if ordered:
            log.info(
                "sessions_reevaluated",
                sessions=len(ordered),
                accounts=len(changes.accounts),
                users=len(users),
            )
        return len(ordered)
