"""Running a batch of checks: read, decide (pure), write the transitions.

A chunk is read without locks, with each session's version, and decided in memory;
the transitions it decides are written together in a few set-based statements that
apply each one only if its session's version is still the one read
(:mod:`e911d.daemon.store.transitions`). Two checks of one session (the tick and an
immediate re-evaluation, or two instances that briefly both own a partition during a
handover) are therefore serialised by the compare-and-set: the second finds the
version moved, reads again and sees what the first decided, so no alert is raised or
resolved twice. A check that changes nothing writes nothing.

Today's design stays selectable (``CheckConfig.set_based=False``, and ``screen=False``
always): the sessions that change something are locked, re-read and written in one
transaction (:meth:`CheckRunner.run`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog

from e911d.daemon.core.evaluation import AlertDecision, decide, evaluate
from e911d.daemon.core.geo import GeoCheck
from e911d.daemon.core.memo import Memo, memo_after
from e911d.daemon.core.model import Account, OpenAlert, Outcome, User, Verdict
from e911d.daemon.core.network_key import network_key
from e911d.daemon.core.unlocated import Sighting, is_unlocated
from e911d.daemon.store.alerts import (
    AlertStore,
    RaisedAlert,
    ResolvedAlert,
    SessionRef,
    raised_alert,
)
from e911d.daemon.store.confirmed_networks import LearningConfig
from e911d.daemon.store.db import load_queries
from e911d.daemon.store.directory import DirectoryCache
from e911d.daemon.store.session_record import session_address, session_network, user_confirmed
from e911d.daemon.store.transitions import Transition, write_transitions

log = structlog.get_logger(__name__)
SQL = load_queries("checks.sql")
# Rounds of read, decide, compare-and-set before the sessions still contended (their
# versions moved every round) are locked and decided as in today's design.
ROUNDS = 3
# Called with the sessions about to be written, between their read and their write:
# a test drives a concurrent change through it.
BeforeWrite = Callable[[Sequence[str]], Awaitable[None]]


@dataclass(slots=True)
class CheckReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    raised: list[RaisedAlert] = field(default_factory=list)
    resolved: list[ResolvedAlert] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    # The account of each checked session, for the sessions-checked record.
    accounts: dict[str, str] = field(default_factory=dict)
    # What each decision leaves for the next check to decide from memory (None: ask again).
    memos: dict[str, Memo | None] = field(default_factory=dict)
    # The checked sessions no group located, for the record of networks nobody
    # configured (docs/spec.md#networks-nobody-configured).
    unlocated: list[Sighting] = field(default_factory=list)

    def merge(self, other: CheckReport) -> None:
        self.outcomes.update(other.outcomes)
        self.raised += other.raised
        self.resolved += other.resolved
        self.checked += other.checked
        self.accounts.update(other.accounts)
        self.memos.update(other.memos)
        self.unlocated += other.unlocated


@dataclass(frozen=True, slots=True)
class CheckConfig:
    dismiss_snooze: dt.timedelta
    # The optional geolocation check (docs/spec.md#geolocation-check, daemon/runtime/geoip.py);
    # None: off.
    geo: GeoCheck | None = None
    # Networks users confirmed (docs/spec.md#networks-a-user-confirmed): key widths, expiry.
    learning: LearningConfig = field(default_factory=LearningConfig)
    # Transitions written set-based under a version compare-and-set; False: today's
    # design (a lock per changing session), kept as the benchmarks' baseline.
    set_based: bool = True


class CheckRunner:
    def __init__(
        self,
        alerts: AlertStore,
        cache: DirectoryCache,
        config: CheckConfig,
        *,
        before_write: BeforeWrite | None = None,
    ) -> None:
        self._alerts = alerts
        self._cache = cache
        self._config = config
        self._before_write = before_write

    async def check(
        self,
        conn: asyncpg.Connection,
        session_ids: Sequence[str],
        now: dt.datetime,
        *,
        screen: bool = True,
    ) -> CheckReport:
        """Check the given sessions; ended ones are skipped.

        With ``screen``, one read without locks decides every session; the transitions
        are written set-based where the sessions' versions did not move, and the others
        are read and decided again (:meth:`_round`), up to ``ROUNDS`` times, then
        locked (:meth:`run`). Concluding "nothing to do" from a committed state writes
        nothing, so it needs no lock. Without ``screen`` (or with ``set_based`` off),
        today's design: the sessions that change something are locked, re-read and
        decided in a transaction.
        """
        if screen and self._config.set_based:
            report = CheckReport()
            rest = sorted(set(session_ids))
            for _ in range(ROUNDS):
                if not rest:
                    return report
                rest = await self._round(conn, report, rest, now)
            if rest:
                log.info("check_writes_contended", sessions=len(rest))
        else:
            report, rest = (
                await self.screen(conn, session_ids, now)
                if screen
                else (CheckReport(), [*session_ids])
            )
        if rest:
            async with conn.transaction():
                report.merge(await self.run(conn, rest, now))
        return report

    async def _round(
        self,
        conn: asyncpg.Connection,
        report: CheckReport,
        session_ids: list[str],
        now: dt.datetime,
    ) -> list[str]:
        """Read and decide the sessions without locks, write their transitions
        set-based; return the sessions whose versions moved before the write."""
        rows = await conn.fetch(SQL["check_rows"], session_ids, self._cutoff(now))
        checked = await self._verdicts(conn, rows)
        snoozed = await self._snoozed(conn, checked, now)
        changing: list[Transition] = []
        for r, verdict, open_alert in checked:
            decision = decide(verdict, open_alert, snoozed.get(r["session_id"], frozenset()))
            if decision.changes_nothing:
                self._decided(report, r, verdict, decision)
            else:
                changing.append(Transition(r, verdict, open_alert, decision))
        if not changing:
            return []
        if self._before_write is not None:
            await self._before_write([t.session_id for t in changing])
        written = await write_transitions(conn, self._alerts, changing, now)
        for t in written.won:
            self._decided(report, t.row, t.verdict, t.decision)
        report.resolved += written.resolved
        report.raised += written.raised
        won = {t.session_id for t in written.won}
        return [t.session_id for t in changing if t.session_id not in won]

    async def screen(
        self, conn: asyncpg.Connection, session_ids: Sequence[str], now: dt.datetime
    ) -> tuple[CheckReport, list[str]]:
        """Settle the sessions whose check changes nothing; return the others (today's
        design, before :meth:`run`)."""
        report = CheckReport()
        rest: list[str] = []
        rows = await conn.fetch(SQL["check_rows"], sorted(set(session_ids)), self._cutoff(now))
        for r, verdict, open_alert in await self._verdicts(conn, rows):
            sid = r["session_id"]
            # Without snoozes: a snooze only ever turns a raise into nothing.
            decision = decide(verdict, open_alert)
            if not decision.changes_nothing:
                rest.append(sid)
                continue
            self._decided(report, r, verdict, decision)
        return report, rest

    def _decided(
        self, report: CheckReport, r: asyncpg.Record, verdict: Verdict, decision: AlertDecision
    ) -> None:
        """What every decided session adds to the report, whichever path decided it."""
        sid = r["session_id"]
        report.outcomes[str(verdict.outcome)] += 1
        report.checked.append(sid)
        report.accounts[sid] = r["account_id"]
        inputs = (r["dir_version"], r["user_version"])
        report.memos[sid] = memo_after(r["account_id"], inputs, verdict, decision)
        if verdict.outcome is Outcome.MISMATCH and decision.snoozed:
            log.info("alert_snoozed", session_id=sid, account_id=r["account_id"])
        if is_unlocated(verdict):
            c = self._config
            p = c.learning.prefixes
            key = network_key(session_address(r), session_network(r), p.ipv4, p.ipv6)
            report.unlocated.append(Sighting(sid, r["account_id"], r["user_id"], key))

    def _cutoff(self, now: dt.datetime) -> dt.datetime:
        """Confirmed networks last confirmed at or before this have expired."""
        return now - self._config.learning.ttl

    async def _verdicts(
        self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]
    ) -> list[tuple[asyncpg.Record, Verdict, OpenAlert | None]]:
        versions = {r["account_id"]: r["dir_version"] for r in rows if r["account_known"]}
        snapshots = await self._cache.get_many(conn, versions)
        checked: list[tuple[asyncpg.Record, Verdict, OpenAlert | None]] = []
        for r in rows:
            account = Account(r["account_id"], r["account_enabled"]) if r["account_known"] else None
            user = (
                User(r["account_id"], r["user_id"], r["user_enabled"], r["e911_location_id"])
                if r["user_known"]
                else None
            )
            verdict = evaluate(
                snapshots.get(r["account_id"]),
                account,
                user,
                session_address(r),
                network=session_network(r),
                geo=self._config.geo,
                confirmed=user_confirmed(
                    r, r["account_id"], r["user_id"], self._config.learning.prefixes
                ),
            )
            open_alert = (
                OpenAlert(r["alert_id"], r["fingerprint"], r["alert_location_id"])
                if r["alert_id"] is not None
                else None
            )
            checked.append((r, verdict, open_alert))
        return checked

    async def run(
        self,
        conn: asyncpg.Connection,
        session_ids: Sequence[str],
        now: dt.datetime,
    ) -> CheckReport:
        """Check the given sessions on ``conn``'s transaction, each locked before it is
        read (today's design; the set-based path's last resort for sessions contended
        every round); ended ones are skipped."""
        report = CheckReport()
        locked = await conn.fetch(SQL["lock_check_sessions"], sorted(set(session_ids)))
        if not locked:
            return report
        rows = await conn.fetch(
            SQL["check_rows"], [r["session_id"] for r in locked], self._cutoff(now)
        )
        checked = await self._verdicts(conn, rows)
        snoozed = await self._snoozed(conn, checked, now)
        seq_updates: list[tuple[str, int]] = []
        for r, verdict, open_alert in checked:
            sid = r["session_id"]
            ip_text: str = r["ip"]
            decision = decide(verdict, open_alert, snoozed.get(sid, frozenset()))
            self._decided(report, r, verdict, decision)
            ref = SessionRef(sid, r["account_id"], r["user_id"], r["kafka_partition"])
            if decision.resolve is not None and open_alert is not None:
                report.resolved.append(
                    ResolvedAlert(open_alert.alert_id, ref, decision.resolve, now)
                )
            if decision.raise_fingerprint is not None:
                episode = r["alert_seq"] + 1
                seq_updates.append((sid, episode))
                report.raised.append(
                    raised_alert(ref, ip_text, r["logged_in_at"], episode, verdict, now)
                )
        if report.resolved or report.raised:
            report.resolved = await self._alerts.apply(
                conn, report.resolved, report.raised, rowwise=not self._config.set_based
            )
        if seq_updates:
            await conn.executemany(SQL["set_alert_seq"], seq_updates)
        return report

    async def _snoozed(
        self,
        conn: asyncpg.Connection,
        checked: Sequence[tuple[asyncpg.Record, Verdict, OpenAlert | None]],
        now: dt.datetime,
    ) -> dict[str, frozenset[str]]:
        """The fingerprints dismissed recently, of the sessions about to raise one.

        Snoozes matter only to a new mismatch: most checks (a match, an unchanged
        mismatch) skip this query."""
        raising = [
            r["session_id"]
            for r, v, a in checked
            if v.fingerprint is not None and (a is None or a.fingerprint != v.fingerprint)
        ]
        if not raising or self._config.dismiss_snooze <= dt.timedelta(0):
            return {}
        return await self._alerts.snoozed(conn, raising, now - self._config.dismiss_snooze)


async def input_versions(conn: asyncpg.Connection) -> list[tuple[str, int, int]]:
    """Every account's (id, directory version, users version): the memo's backstop."""
    rows = await conn.fetch(SQL["input_versions"])
    return [(r["account_id"], r["dir_version"], r["user_version"]) for r in rows]
