"""Checks: the tick that drains the due sessions, and checking given sessions at once.

A due session whose decision memory holds every input of, and that changes nothing,
is decided in memory (:mod:`e911d.daemon.core.memo`): counted, nothing written. Every
other one (a transition, a doubt), and every session checked at once after a notice,
runs the same :class:`~e911d.daemon.store.check_batches.CheckRunner`: the chunk read
without locks and its transitions written together under each session's version
(compare-and-set), so a tick and an immediate re-evaluation of the same session, on
this instance or another, never both apply a decision.

Every session decided either way is recorded in ``checked_sessions`` the first time
on each UTC day (:mod:`e911d.daemon.core.checked_today`) by a writer task of its own: the claims
of the chunks decided while it writes go out together in its next statement, and no
check waits for it. That record is evidence for a report, not on an alert's path: one
attempt, and a failure leaves the sessions to be recorded by a later check (after a
pause: daemon/core/checked_today.py). The record of networks nobody configured
follows the same pattern (:mod:`e911d.daemon.services.unconfigured`): every database
check hands it what it decided.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence

import structlog

from e911d.daemon.core.checked_today import PAUSE, CheckedToday, Claim, due_for_pruning
from e911d.daemon.core.decision_inputs import AccountInputs, SessionInputs
from e911d.daemon.core.geo import GeoCheck
from e911d.daemon.core.model import Outcome
from e911d.daemon.core.network_key import network_key
from e911d.daemon.services.deps import Runtime, learning_config, utcnow
from e911d.daemon.services.inflight import InFlight
from e911d.daemon.services.relay import Relay
from e911d.daemon.services.unconfigured import UnconfiguredRecorder
from e911d.daemon.store.check_batches import CheckConfig, CheckReport, CheckRunner, input_versions
from e911d.daemon.store.checked_sessions import record_checked
from e911d.daemon.store.db import DatabaseError, errors, retrying
from e911d.daemon.store.decision_rows import read_accounts, read_partition, read_sessions

log = structlog.get_logger(__name__)
# The sessions-checked write waits no longer: a tick deciding from memory must not
# wait for an unreachable database.
RECORD_TIMEOUT = 2.0
# The most rows one statement writes (about 0.25 s at 23 ms a thousand).
RECORD_ROWS = 10_000


class Checks:
    def __init__(self, rt: Runtime, relay: Relay, geo: GeoCheck | None = None) -> None:
        self._rt = rt
        self._relay = relay
        self._in_flight = InFlight()
        interval = dt.timedelta(seconds=rt.settings.checks.interval_seconds)
        self._checked = CheckedToday(pause=min(PAUSE, interval))
        self._unwritten: deque[Claim] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._unconfigured = UnconfiguredRecorder(rt)
        s = rt.settings
        self._geo = geo
        self._learning = learning_config(s)
        self._runner = CheckRunner(
            rt.alerts,
            rt.cache,
            CheckConfig(
                dt.timedelta(seconds=s.checks.dismiss_snooze_seconds), geo, learning_config(s)
            ),
        )

    async def tick(self) -> None:
        """Drain every due session in chunks of ``batch_size``; one transaction each."""
        rt = self._rt
        if rt.stopping.is_set():
            return
        batch_size = rt.settings.checks.batch_size
        memos = rt.memos
        with self._in_flight:
            if memos.enabled and memos.unread and rt.ownership.loaded:
                await self._read_partitions()
            first = rt.schedule.next_due()
            if memos.enabled and first is not None and first <= time.time():
                # The backstop against lost notices: once per tick, for all accounts,
                # before anything is taken from the schedule; an account whose
                # versions moved is read again before its sessions are decided.
                await self.refresh_versions()
            while not rt.stopping.is_set():
                due = rt.schedule.pop_due(time.time(), batch_size)
                if not due:
                    return
                owned = [d for d in due if d.partition in rt.ownership.partitions]
                if memos.enabled:
                    await self._prepare([d.session_id for d in owned])
                remembered: Counter[Outcome] = Counter()
                ask: list[str] = []
                # The schedule's own id strings: the day's record shares them.
                checked: list[tuple[str, str]] = []
                unlocated = self._unconfigured.due()
                decided_at = time.time()
                for d in owned:
                    # A session on a network nobody configured is read from the
                    # database once a day, to record its network (daemon/core/unlocated.py).
                    hit = (
                        None
                        if d.session_id in unlocated
                        else memos.decide(d.session_id, self._geo, decided_at)
                    )
                    if (
                        hit is None
                        or hit.outcome is None
                        or (hit.unlocated and not self._sighted(d.session_id, hit))
                    ):
                        ask.append(d.session_id)
                    else:
                        remembered[hit.outcome] += 1
                        checked.append((d.session_id, hit.account_id))
                accounts = (await self._check(ask)).accounts
                for outcome, n in remembered.items():
                    rt.metrics.checks.labels(outcome=outcome).inc(n)
                rt.metrics.checks_in_memory.inc(remembered.total())
                ran = time.time()
                for d in owned:
                    rt.metrics.check_lateness.observe(max(0.0, ran - d.due_at))
                checked += ((sid, accounts[sid]) for sid in ask if sid in accounts)
                self._record(checked)
                if len(due) < batch_size:
                    return
                # A chunk decided wholly from memory awaits nothing: without this, a
                # pass over a million sessions would hold the loop (and /metrics,
                # /readyz, the consumer's heartbeats) for seconds. Safe: the next
                # chunk is taken and decided after it, with no await in between.
                await asyncio.sleep(0)

    def _sighted(self, session_id: str, inputs: SessionInputs) -> bool:
        """Whether an unlocated session's network is recorded today: until it is, the
        database path decides the session (and records it)."""
        p = self._learning.prefixes
        key = network_key(inputs.ip, inputs.network, p.ipv4, p.ipv6)
        return self._unconfigured.recorded(session_id, key)

    async def _read_partitions(self) -> None:
        """Read the inputs of the sessions of partitions just assigned, one query each
        (then their accounts), so that their checks, first ones and a restart's
        overdue ones included, are decided in memory without a read per chunk."""
        rt = self._rt
        memos = rt.memos
        for partition in sorted(memos.unread & rt.ownership.partitions):
            # Taken out first: a handover while reading puts it back.
            memos.unread.discard(partition)
            started = memos.begin()
            rows: list[tuple[str, SessionInputs]] = []

            async def read(p: int = partition) -> list[tuple[str, SessionInputs]]:
                async with rt.pool.acquire() as conn:
                    return await read_partition(conn, p, memos.shared)

            try:
                rows = await retrying("check_inputs", read, stop=rt.stopping)
            except DatabaseError as exc:
                rt.metrics.db_errors.labels(operation="check_inputs").inc()
                log.warning("partition_inputs_failed", partition=partition, error=str(exc))
                continue  # its sessions' inputs are read per chunk, as they fall due
            finally:
                memos.sessions_read(started, rows)
            log.info("partition_inputs_read", partition=partition, sessions=len(rows))
            try:
                await self._read_accounts({s.account_id for _, s in rows})
            except DatabaseError as exc:
                rt.metrics.db_errors.labels(operation="check_inputs").inc()
                log.warning("check_inputs_failed", sessions=0, error=str(exc))
        memos.unread &= rt.ownership.partitions

    async def _prepare(self, session_ids: Sequence[str]) -> None:
        """Read what memory lacks to decide these sessions: their rows and open alerts
        (a first check, or after a change) and their accounts (not yet read, or
        changed). A failed read leaves them to the database path."""
        rt = self._rt
        memos = rt.memos
        sessions, accounts = memos.missing(session_ids)
        try:
            if sessions:
                started = memos.begin()
                rows: list[tuple[str, SessionInputs]] = []

                async def read() -> list[tuple[str, SessionInputs]]:
                    async with rt.pool.acquire() as conn:
                        return await read_sessions(conn, sessions, memos.shared)

                try:
                    rows = await retrying("check_inputs", read, stop=rt.stopping)
                finally:
                    memos.sessions_read(started, rows)
                accounts.update(s.account_id for _, s in rows if memos.account_due(s.account_id))
            await self._read_accounts(accounts)
        except DatabaseError as exc:
            rt.metrics.db_errors.labels(operation="check_inputs").inc()
            log.warning("check_inputs_failed", sessions=len(sessions), error=str(exc))

    async def _read_accounts(self, account_ids: set[str]) -> None:
        """Read the accounts among these that memory does not hold (or must read again)."""
        rt = self._rt
        memos = rt.memos
        accounts = {a for a in account_ids if memos.account_due(a)}
        if not accounts:
            return
        began = memos.begin()
        loaded: list[AccountInputs] = []

        async def read() -> list[AccountInputs]:
            async with rt.pool.acquire() as conn:
                return await read_accounts(
                    conn, sorted(accounts), rt.cache, self._learning, utcnow(), memos.shared, began
                )

        try:
            loaded = await retrying("check_accounts", read, stop=rt.stopping)
        finally:
            memos.accounts_read(began, loaded)

    async def refresh_versions(self) -> None:
        """Re-read every account's input versions in one query."""
        rt = self._rt
        started = rt.memos.refresh_begin()

        async def read() -> list[tuple[str, int, int]]:
            async with rt.pool.acquire() as conn:
                return await input_versions(conn)

        rt.memos.refresh_end(started, await retrying("check_versions", read, stop=rt.stopping))

    async def check(self, session_ids: Sequence[str]) -> CheckReport:
        """Check these sessions now; their schedule stays as it is."""
        with self._in_flight:
            report = await self._check(session_ids)
            self._record(report.accounts.items())
        return report

    async def _check(self, session_ids: Sequence[str]) -> CheckReport:
        if not session_ids:
            return CheckReport()
        rt = self._rt
        with self._in_flight:

            async def tx() -> CheckReport:
                async with rt.pool.acquire() as conn:
                    return await self._runner.check(
                        conn, session_ids, utcnow(), screen=rt.memos.enabled
                    )

            started = rt.memos.begin()
            try:
                report = await retrying("checks", tx, stop=rt.stopping)
            finally:
                # Raised or resolved, or not: read again before memory decides them.
                rt.memos.end(started, session_ids)
        for outcome, n in report.outcomes.items():
            rt.metrics.checks.labels(outcome=outcome).inc(n)
        self._relay.decided(report.raised, report.resolved)
        self._unconfigured.decided(report)
        return report

    def _record(self, checked: Iterable[tuple[str, str]]) -> None:
        """Claim the sessions not yet recorded today for the writer task: no check
        waits for this evidence (the first pass of a day records every session)."""
        claim = self._checked.claim(checked, utcnow())
        schedule = self._rt.schedule
        if due_for_pruning(len(self._checked), len(schedule)):
            self._checked.prune(schedule)
        if not claim:
            return
        self._unwritten.append(claim)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="checked_sessions")

    async def _write(self) -> None:
        """Write the claims, those made meanwhile together, up to RECORD_ROWS a
        statement; one attempt each: a failure releases its claims (a later check
        claims those sessions again, after the pause). Never raises."""
        rt = self._rt
        while self._unwritten:
            claims = [self._unwritten.popleft()]
            while self._unwritten and sum(map(len, claims)) < RECORD_ROWS:
                claims.append(self._unwritten.popleft())
            sessions = [sid for c in claims for sid in c.session_ids]
            accounts = [account for c in claims for account in c.account_ids]
            try:
                with errors("checked_sessions"):
                    async with asyncio.timeout(RECORD_TIMEOUT), rt.pool.acquire() as conn:
                        await record_checked(conn, sessions, accounts, utcnow())
            except DatabaseError as exc:
                now = utcnow()
                for claim in claims:
                    self._checked.failed(claim, now)
                rt.metrics.db_errors.labels(operation="checked_sessions").inc()
                log.warning("checked_sessions_write_failed", sessions=len(sessions), error=str(exc))

    async def drain(self) -> None:
        """Wait for the chunk in hand (:meth:`tick` starts nothing once stopping) and
        for the record's writer, which the timeout bounds."""
        await self._in_flight.idle()
        if self._writer is not None:
            await self._writer
        await self._unconfigured.drain()
