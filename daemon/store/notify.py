"""Directory change notices from PostgreSQL: LISTEN on a dedicated, self-healing connection.

Triggers on the directory tables (migration 0002) NOTIFY on every change, whoever
wrote it, so every instance hears about a toggle flipped in the console or a location
fixed in the app within milliseconds, not at the next scheduled check. A notice only
says *what* changed; the re-evaluation reads the rows themselves, so a lost or
duplicated notice can delay a re-evaluation but never make it wrong.

Notices are missed while the connection is down. The listener keeps a horizon in the
database's own order (a transaction id, see :mod:`e911d.daemon.store.missed_changes`),
advanced by each keepalive probe it hears back; after a reconnection it reads every
change at or after that horizon before it reports itself healthy, and the owner drops
its cached snapshots and treats those changes as just notified (see
:meth:`e911d.daemon.services.reevaluation.Reevaluation.catch_up`). No clock and no
time margin: every change committed while deaf is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog

from e911d.config.dsn import dsn_options
from e911d.daemon.core.retry import Backoff, retry
from e911d.daemon.store.db import DatabaseError, connect_host_by_host, connect_target, errors
from e911d.daemon.store.limits import ConnectionLimits, apply_limits
from e911d.daemon.store.missed_changes import (
    Horizon,
    Missed,
    missed_since,
    parse_mark,
    send_mark,
)

log = structlog.get_logger(__name__)

CHANNEL = "e911_directory"
# What pg_stat_activity shows for the LISTEN connection, so operators and tests can find it.
APPLICATION_NAME = "e911d-listener"
KINDS = frozenset({"account", "user", "directory", "all"})


@dataclass(frozen=True, slots=True)
class Notice:
    """One directory change: an account-wide one when ``user_id`` is None."""

    kind: str
    account_id: str | None
    user_id: str | None = None


def parse_notice(payload: str) -> Notice | None:
    """The trigger's payload, or None for anything else that was sent on the channel."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("k") not in KINDS:
        return None
    kind = data["k"]
    if kind == "all":
        return Notice("all", None)
    account, user = data.get("a"), data.get("u")
    if not isinstance(account, str) or not account:
        return None
    if kind == "user":
        if not isinstance(user, str) or not user:
            return None
        return Notice("user", account, user)
    return Notice(kind, account)


@dataclass(slots=True)
class PendingChanges:
    """Notices coalesced between two re-evaluation passes.

    A burst (an import of 10,000 users, a replayed directory topic) becomes one pass;
    an account with more changed users than ``max_users_per_account`` is re-evaluated
    as a whole, which is one query instead of thousands of parameters.
    """

    max_users_per_account: int = 1_000
    everything: bool = False
    accounts: set[str] = field(default_factory=set)
    users: set[tuple[str, str]] = field(default_factory=set)
    count: int = 0

    def add(self, notice: Notice) -> None:
        self.count += 1
        if notice.kind == "all" or notice.account_id is None:
            self.everything = True
        elif notice.user_id is None:
            self.accounts.add(notice.account_id)
        else:
            self.users.add((notice.account_id, notice.user_id))

    def __bool__(self) -> bool:
        return self.count > 0

    def drain(self) -> PendingChanges:
        """Hand over what is pending and start afresh."""
        out = PendingChanges(
            self.max_users_per_account, self.everything, self.accounts, self.users, self.count
        )
        self.everything, self.accounts, self.users, self.count = False, set(), set(), 0
        per_account: dict[str, int] = {}
        for account, _ in out.users:
            per_account[account] = per_account.get(account, 0) + 1
        crowded = {a for a, n in per_account.items() if n > out.max_users_per_account}
        if crowded:
            out.accounts |= crowded
            out.users = {k for k in out.users if k[0] not in crowded}
        return out


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    dsn: str
    keepalive_seconds: float = 5.0
    connect_timeout_seconds: float = 5.0
    max_backoff_seconds: float = 5.0
    # The bounds every connection gets (keepalives, statement and command timeouts).
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)


@dataclass(frozen=True, slots=True)
class ListenerHooks:
    on_notice: Callable[[Notice], None]
    # Called after every (re)connection, before the listener counts as healthy, with
    # every change that may have been missed while deaf (None on the first connection).
    on_connected: Callable[[Sequence[Notice] | None], Awaitable[None]]
    on_state: Callable[[bool], None]


def _any_database_error(exc: BaseException) -> bool:
    # Even a "permanent" error is retried here: the server may be mid-restart with
    # its authentication not loaded yet, and the scheduled checks carry on meanwhile.
    return isinstance(exc, DatabaseError)


class DirectoryListener:
    """LISTENs on its own connection (not the pool's) and reconnects when it is lost.

    As a component, ``async with`` makes the first connection (so the daemon hears
    changes from start-up on) and leaving the block closes it.
    """

    def __init__(self, config: ListenerConfig, hooks: ListenerHooks) -> None:
        self._config = config
        self._target = connect_target(config.dsn)  # a DSN no retry mends ends the start
        self._hooks = hooks
        self.connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._backoff = Backoff(initial=0.2, maximum=config.max_backoff_seconds)
        # The oldest transaction in flight when every notice before was last proved
        # heard (None before the first connection); see missed_changes.
        self.horizon: Horizon | None = None
        self.marks_heard = 0  # own keepalive markers heard back (each may advance it)
        self._markers = (f"{uuid.uuid4().hex}.{n}" for n in itertools.count())
        self._marker = ""  # this connection's marker, so another instance's is ignored

    async def __aenter__(self) -> DirectoryListener:
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection (what an operator would kill)."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else int(conn.get_server_pid())

    async def _connect(self) -> None:
        marker = next(self._markers)
        with errors("directory_listener_connect"):
            conn = await connect_host_by_host(
                self._target.dsn,
                timeout=self._config.connect_timeout_seconds,
                command_timeout=self._config.limits.command_timeout,
                server_settings={"application_name": APPLICATION_NAME},
                **self._target.options(),
            )
            try:
                await apply_limits(conn, self._config.limits, dsn_options(self._config.dsn))
                self._marker = marker
                await conn.add_listener(CHANNEL, self._on_notify)
                conn.add_termination_listener(self._on_terminated)
                # LISTEN is active from here: anything committed after this read
                # is heard; anything before it and at or after the horizon is read.
                async with asyncio.timeout(self._config.connect_timeout_seconds):
                    missed = await missed_since(conn, self.horizon)
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 1)
                raise
        first = self.horizon is None
        self._conn = conn
        self._lost.clear()
        # Healthy only once caught up: what changed while deaf is queued first.
        await self._hooks.on_connected(None if first else _as_notices(missed))
        self.horizon = missed.horizon
        self.connected.set()
        self._hooks.on_state(True)
        log.info(
            "directory_listener_connected",
            caught_up=not first,
            missed_accounts=len({a for _, a in missed.changed}),
            missed_everything=missed.everything,
        )

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        mark = parse_mark(payload)
        if mark is not None:
            # Our own probe heard back: every notice queued before it was heard.
            if mark.token == self._marker and self.horizon is not None:
                self.marks_heard += 1
                self.horizon = self.horizon.advanced(mark.horizon)
            return
        notice = parse_notice(payload)
        if notice is None:
            log.warning("directory_notice_ignored", payload=payload[:200])
            return
        self._hooks.on_notice(notice)

    def _on_terminated(self, _conn: object) -> None:
        self.connected.clear()
        self._lost.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a healthy LISTEN connection until ``stop``; never returns early on errors."""
        while not stop.is_set():
            if self._conn is None:
                try:
                    await retry(
                        "directory_listener_connect",
                        self._connect,
                        retry_if=_any_database_error,
                        log=log,
                        backoff=self._backoff,
                        stop=stop,
                        attempts_after_stop=0,
                    )
                except DatabaseError:
                    if stop.is_set():
                        return
                    raise
                continue
            await self._watch(stop)

    async def _watch(self, stop: asyncio.Event) -> None:
        """Probe the connection every keepalive (the probe is a marker NOTIFY, which
        also advances the horizon); on loss, drop it so ``run`` reconnects."""
        conn = self._conn
        assert conn is not None  # noqa: S101
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._lost.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self._config.keepalive_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waits:
                w.cancel()
        if stop.is_set():
            return
        try:
            with errors("directory_listener_probe"):
                if conn.is_closed() or not self.connected.is_set():
                    raise ConnectionError("listener connection closed")
                async with asyncio.timeout(self._config.connect_timeout_seconds):
                    await send_mark(conn, CHANNEL, self._marker)
        except DatabaseError as exc:
            log.warning("directory_listener_lost", error=str(exc))
            self._hooks.on_state(False)
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.connected.clear()
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self.connected.clear()
        if conn is not None and not conn.is_closed():
            try:
                with errors("directory_listener_close"):
                    await asyncio.wait_for(conn.close(), 1)
            except DatabaseError:
                conn.terminate()


def _as_notices(missed: Missed) -> list[Notice]:
    """What a reconnection read, as the notices it stands for."""
    if missed.everything:
        return [Notice("all", None)]
    return [Notice(kind, account) for kind, account in missed.changed]
