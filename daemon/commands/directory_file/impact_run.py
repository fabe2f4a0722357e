"""``e911d directory import FILE --dry-run --impact``: every live session of the file's
accounts decided under the current directory and under the file's
(docs/spec.md#impact-before-import); what is counted is defined in
:mod:`e911d.daemon.core.impact`.

It runs in the dry run's own transaction (REPEATABLE READ, READ ONLY), after the plan:
the plan, the two directories, the users, the open alerts and the snoozes all come
from one snapshot, and nothing is written. Only the file's accounts can change, so only
their sessions are read. Sessions stream from a server-side cursor in chunks; each
account's two directories are compiled once, each user is one value shared by all
their sessions, and a session is decided a second time only when its account's
directory or toggle, or its user, is changed by the plan. The sessions are split by a
hash of their id between processes, one per core (up to four): the others are forked
once both directories are compiled, and each reads its part through a connection of
its own in the snapshot this transaction exports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Final

import asyncpg
import structlog

from e911d.daemon.commands.directory_file.impact_state import (
    Sides,
    after_state,
    current_state,
)
from e911d.daemon.commands.directory_file.plan import Plan
from e911d.daemon.core.confirmed_network import UserConfirmed
from e911d.daemon.core.events import DirectoryChange
from e911d.daemon.core.geo import GeoCheck
from e911d.daemon.core.impact import NO_SNOOZES, AccountImpact, Example, Side, check_decision
from e911d.daemon.core.model import OpenAlert
from e911d.daemon.core.network import NetworkSignals
from e911d.daemon.core.retry import BRIEF
from e911d.daemon.store.confirmed_networks import LearningConfig
from e911d.daemon.store.db import DatabaseError, PoolConfig, errors, open_pool
from e911d.daemon.store.directory import load_accounts
from e911d.daemon.store.impact_rows import (
    accounts_of,
    address_of,
    confirmed_of,
    export_snapshot,
    live_sessions,
    snoozes_of,
    use_snapshot,
    users_of,
)

log = structlog.get_logger(__name__)

EXAMPLES: Final = 5
CHUNK: Final = 20_000


@dataclass(frozen=True, slots=True)
class ImpactOptions:
    """``snooze``: the checks' ``dismiss_snooze``; ``geo``: their geolocation check, if
    configured; ``now``: the clock the snoozes (and the confirmed networks' expiry,
    ``learning``) are measured against. ``workers``:
    processes deciding sessions at once, each reading its part in the same snapshot
    through a connection of its own to ``connect`` (1, or no ``connect``: this process
    alone)."""

    now: dt.datetime
    snooze: dt.timedelta
    geo: GeoCheck | None = None
    learning: LearningConfig = field(default_factory=LearningConfig)
    examples: int = EXAMPLES
    chunk: int = CHUNK
    workers: int = 1
    connect: PoolConfig | None = None


def default_workers() -> int:
    """One process per core, up to four, where processes can be forked."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(4, os.cpu_count() or 1))


async def sides_of(
    conn: asyncpg.Connection,
    account_ids: Sequence[str],
    plan: Plan,
    now: dt.datetime,
    learning: LearningConfig,
) -> dict[str, Sides]:
    """Each account's current and after-import state, compiled once."""
    accounts = await accounts_of(conn, account_ids)
    users = await users_of(conn, account_ids)
    entries = await confirmed_of(conn, account_ids, now - learning.ttl)
    confirmed = {
        a: {
            u: UserConfirmed(a, u, held, learning.prefixes)
            for u, held in entries.get(a, {}).items()
        }
        for a in account_ids
    }
    loaded = {la.directory.account_id: la for la in await load_accounts(conn, account_ids, {})}
    changes: dict[str, list[DirectoryChange]] = defaultdict(list)
    for step in plan.steps:  # in the plan's order, as the import applies them
        changes[step.account_id].append(step.change)
    out: dict[str, Sides] = {}
    for a in account_ids:
        account = accounts.get(a)
        out[a] = Sides(
            a,
            current_state(account, loaded[a], users[a], confirmed[a]),
            after_state(a, account, loaded[a], users[a], confirmed[a], changes.get(a, ())),
        )
    return out


@dataclass(frozen=True, slots=True)
class _Work:
    """What every process of one impact shares: built before the others are forked."""

    ids: list[str]
    sides: dict[str, Sides]
    snoozes: dict[str, frozenset[str]]
    options: ImpactOptions
    snapshot: str = ""


# The work of the impact being measured, inherited by forked processes (never pickled:
# compiled directories and a GeoIP reader do not pickle).
_WORK: _Work | None = None


async def measure_impact(
    conn: asyncpg.Connection, account_ids: Sequence[str], plan: Plan, options: ImpactOptions
) -> list[AccountImpact]:
    """Per account of the file (sorted by id), the impact on its live sessions. Must
    run in the transaction the plan was made in; other processes, if any, import its
    snapshot, so every part is read from the same one."""
    global _WORK  # handed to forked processes, see _WORK
    ids = sorted(set(account_ids))
    sides = await sides_of(conn, ids, plan, options.now, options.learning)
    snoozes: dict[str, frozenset[str]] = {}
    if options.snooze > dt.timedelta(0):
        snoozes = await snoozes_of(conn, ids, options.now - options.snooze)
    workers = options.workers if options.connect is not None else 1
    snapshot = await export_snapshot(conn) if workers > 1 else ""
    # Millions of short-lived values and no cycles: the cyclic collector would only
    # walk them again and again (forked processes inherit this).
    was_enabled = gc.isenabled()
    gc.disable()
    _WORK = _Work(ids, sides, snoozes, options, snapshot)
    try:
        if workers == 1:
            return await _part(conn, _WORK, (0, 1))
        context = multiprocessing.get_context("fork")
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(workers - 1, mp_context=context) as pool:
            others = [loop.run_in_executor(pool, _forked, k, workers) for k in range(1, workers)]
            try:
                mine = await _part(conn, _WORK, (0, workers))
            finally:
                done = await asyncio.gather(*others, return_exceptions=True)
        for k, outcome in enumerate(done, start=1):
            if isinstance(outcome, BaseException):
                raise outcome
            if isinstance(outcome, str):
                # That process could not read its part (no connection to spare, say):
                # this one reads it, in the snapshot it exported.
                log.warning("impact_part_read_here", part=k, parts=workers, error=outcome)
                outcome = await _part(conn, _WORK, (k, workers))
            mine = [a.merged(b) for a, b in zip(mine, outcome, strict=True)]
        return mine
    finally:
        _WORK = None
        if was_enabled:
            gc.enable()


async def _part(
    conn: asyncpg.Connection, work: _Work, part: tuple[int, int]
) -> list[AccountImpact]:
    impacts = {a: AccountImpact(a, work.options.examples) for a in work.ids}
    async for rows in live_sessions(conn, work.ids, work.options.chunk, part):
        _decide(rows, work.sides, impacts, work.snoozes, work.options.geo)
    return [impacts[a] for a in work.ids]


def _forked(k: int, n: int) -> list[AccountImpact] | str:
    """Part k of n, in a forked process: its own connection, the parent's snapshot. A
    database error comes back as its message (its exception does not pickle)."""
    work = _WORK
    assert work is not None and work.options.connect is not None  # noqa: S101  set before fork
    config = work.options.connect

    async def run() -> list[AccountImpact]:
        async with open_pool(config, backoff=BRIEF) as pool, pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await use_snapshot(conn, work.snapshot)
                return await _part(conn, work, (k, n))

    try:
        with errors("directory"):
            return asyncio.run(run())
    except DatabaseError as exc:
        return str(exc)


def _decide(
    rows: Sequence[asyncpg.Record],
    sides: dict[str, Sides],
    impacts: dict[str, AccountImpact],
    snoozes: dict[str, frozenset[str]],
    geo: GeoCheck | None,
) -> None:
    """One chunk of sessions: each decided under both directories and counted. The
    columns are read by position (daemon/store/sql/impact.sql impact_sessions)."""
    side: Sides | None = None
    impact: AccountImpact | None = None
    current = ""
    for sid, account_id, user_id, ip_value, bssid, chassis, port, alert_id, fp, alert_loc in rows:
        if account_id != current or side is None or impact is None:
            current, side, impact = account_id, sides[account_id], impacts[account_id]
            now, after, same_account = side.now, side.after, side.same_account
        ip = address_of(ip_value)
        network = (
            None
            if bssid is None and chassis is None and port is None
            else NetworkSignals(bssid, chassis, port)
        )
        open_alert = None if alert_id is None else OpenAlert(alert_id, fp, alert_loc)
        snoozed = snoozes.get(sid, NO_SNOOZES)
        user_now, confirmed_now = now.users.get(user_id), now.confirmed.get(user_id)
        v_now, d_now = check_decision(
            now.directory,
            now.account,
            user_now,
            ip,
            network,
            open_alert,
            snoozed,
            geo,
            confirmed_now,
        )
        user_after, confirmed_after = after.users.get(user_id), after.confirmed.get(user_id)
        if same_account and user_after is user_now and confirmed_after is confirmed_now:
            v_after, d_after = v_now, d_now  # the same inputs: the same decision
        else:
            v_after, d_after = check_decision(
                after.directory,
                after.account,
                user_after,
                ip,
                network,
                open_alert,
                snoozed,
                geo,
                confirmed_after,
            )
        change = impact.add(d_now, d_after)
        if change is not None and impact.wants(change, sid):
            sides_now, sides_after = Side.of(v_now, d_now), Side.of(v_after, d_after)
            impact.example(change, Example(sid, user_id, str(ip), sides_now, sides_after))
