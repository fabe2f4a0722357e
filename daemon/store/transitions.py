"""Writing the transitions a chunk of checks decided: a few statements for the chunk.

The checks read their sessions without locks and decide in memory; the raises,
resolves and supersedes they decide are written together, guarded by each session's
version instead of a lock taken per session before reading it: one compare-and-set
statement claims the sessions whose version is still the one read with their inputs
(and locks them until the transaction ends), then the resolutions, and the raised
alerts with every event, are written for those alone (:meth:`AlertStore.apply`: two
statements however many rows). A session whose version moved since it was read (ingest
changed it, a dismissal, another instance or check wrote it) is left out, for the
caller to read and decide again: a decision is never applied on inputs that changed
under it, and never twice. Alerts and their outbox rows commit in one transaction, so
a kill -9 loses neither without the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from e911d.daemon.core.evaluation import AlertDecision
from e911d.daemon.core.model import OpenAlert, Verdict
from e911d.daemon.store.alerts import (
    AlertStore,
    RaisedAlert,
    ResolvedAlert,
    SessionRef,
    raised_alert,
)
from e911d.daemon.store.db import load_queries

SQL = load_queries("checks.sql")


@dataclass(frozen=True, slots=True)
class Transition:
    """One session's decision that changes something, with what it was decided from."""

    row: asyncpg.Record  # the session's check_rows row, with the version read
    verdict: Verdict
    open_alert: OpenAlert | None
    decision: AlertDecision

    @property
    def session_id(self) -> str:
        sid: str = self.row["session_id"]
        return sid


@dataclass(frozen=True, slots=True)
class Written:
    """What took effect: the transitions written (the others must be decided again),
    the resolutions that found their alert open, and the alerts raised."""

    won: list[Transition]
    resolved: list[ResolvedAlert]
    raised: list[RaisedAlert]


async def write_transitions(
    conn: asyncpg.Connection,
    alerts: AlertStore,
    transitions: Sequence[Transition],
    now: dt.datetime,
) -> Written:
    """Write the transitions whose sessions did not change since they were read, in
    one transaction of three or four statements; return what was written."""
    ordered = sorted(transitions, key=lambda t: t.session_id)
    resolved: dict[str, ResolvedAlert] = {}
    raised: dict[str, RaisedAlert] = {}
    seqs: list[int] = []
    for t in ordered:
        r, sid = t.row, t.session_id
        ref = SessionRef(sid, r["account_id"], r["user_id"], r["kafka_partition"])
        seq: int = r["alert_seq"]
        if t.decision.resolve is not None and t.open_alert is not None:
            resolved[sid] = ResolvedAlert(t.open_alert.alert_id, ref, t.decision.resolve, now)
        if t.decision.raise_fingerprint is not None:
            seq += 1
            raised[sid] = raised_alert(ref, r["ip"], r["logged_in_at"], seq, t.verdict, now)
        seqs.append(seq)
    async with conn.transaction():
        claimed = await conn.fetch(
            SQL["claim_transitions"],
            [t.session_id for t in ordered],
            [t.row["version"] for t in ordered],
            seqs,
        )
        won = {r["session_id"] for r in claimed}
        up = [a for sid, a in raised.items() if sid in won]
        done = await alerts.apply(
            conn, [a for sid, a in resolved.items() if sid in won], up, touch=False
        )
    return Written([t for t in ordered if t.session_id in won], done, up)
