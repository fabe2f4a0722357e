"""Bounds on every PostgreSQL connection, so that a silent database is noticed.

A network black hole (a dropped firewall rule, a half-dead NAT) refuses nothing and
resets nothing: connections stay open and no answer comes. Only timeouts notice:

- connecting: ``connect_timeout`` (asyncpg's ``timeout``);
- taking a pooled connection: ``acquire_timeout`` (:class:`BoundedPool`);
- each statement, client side: ``command_timeout``; server side: ``statement_timeout``,
  because a client cut off by the hole cannot get its cancel request through, and the
  statement would otherwise hold its locks until the server notices the client gone;
- an idle connection: TCP keepalives on both ends (``tcp_keepalive_idle``), and
  ``TCP_USER_TIMEOUT`` for data sent and never acknowledged.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import asyncpg

from e911d.config import PostgresSettings

# Keepalive probes after the idle time: this many, this far apart (a third of it).
KEEPALIVE_PROBES = 3


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    command_timeout: float = 30.0
    connect_timeout: float = 10.0
    acquire_timeout: float = 10.0
    # None: the server's own (the CLI's long imports and reports keep it).
    statement_timeout: float | None = None
    tcp_keepalive_idle: float = 30.0

    @property
    def keepalive_interval(self) -> int:
        return max(1, round(self.tcp_keepalive_idle / KEEPALIVE_PROBES))

    @classmethod
    def of(cls, pg: PostgresSettings) -> ConnectionLimits:
        """The daemon's bounds, from its settings (a statement timeout of 0: none)."""
        return cls(
            command_timeout=pg.command_timeout_seconds,
            connect_timeout=pg.connect_timeout_seconds,
            acquire_timeout=pg.acquire_timeout_seconds,
            statement_timeout=pg.statement_timeout_seconds or None,
            tcp_keepalive_idle=pg.tcp_keepalive_idle_seconds,
        )

    def server_settings(self, dsn_options: dict[str, str]) -> dict[str, str]:
        """Set per session on the server; a setting the DSN gives itself wins."""
        wanted = {
            "tcp_keepalives_idle": str(round(self.tcp_keepalive_idle)),
            "tcp_keepalives_interval": str(self.keepalive_interval),
            "tcp_keepalives_count": str(KEEPALIVE_PROBES),
        }
        if self.statement_timeout is not None:
            wanted["statement_timeout"] = f"{round(self.statement_timeout * 1000)}ms"
        return {k: v for k, v in wanted.items() if k not in dsn_options}


async def apply_limits(
    conn: asyncpg.Connection, limits: ConnectionLimits, dsn: dict[str, str]
) -> None:
    """The client's TCP keepalives on the connection's socket, and the server's
    settings (with SET rather than in the start-up packet, which a pooler such as
    PgBouncer may refuse)."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        set_keepalive(sock, limits)
    settings = limits.server_settings(dsn)
    if settings:
        names = sorted(settings)
        await conn.execute(
            "SELECT "
            + ", ".join(
                f"set_config(${2 * i + 1}, ${2 * i + 2}, false)" for i in range(len(names))
            ),
            *[x for name in names for x in (name, settings[name])],
        )


def set_keepalive(sock: socket.socket, limits: ConnectionLimits) -> None:
    idle = max(1, round(limits.tcp_keepalive_idle))
    interval = limits.keepalive_interval
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options: list[tuple[str, int]] = [
        ("TCP_KEEPIDLE", idle),
        ("TCP_KEEPINTVL", interval),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
        # Data unacknowledged this long closes the connection (Linux).
        ("TCP_USER_TIMEOUT", (idle + interval * KEEPALIVE_PROBES) * 1000),
    ]
    for name, value in options:
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]
    """An asyncpg pool whose ``acquire()`` waits at most ``acquire_timeout`` when the
    caller gives no timeout of its own: with every connection stuck in a silent
    database, a caller would otherwise wait for ever."""

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        self._acquire_timeout = acquire_timeout
        super().__init__(*args, **kwargs)

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self._acquire_timeout if timeout is None else timeout)


async def bounded_pool(dsn: str, limits: ConnectionLimits, **kwargs: Any) -> asyncpg.Pool:
    """What ``asyncpg.create_pool`` makes, as a :class:`BoundedPool` with ``limits``."""
    pool: asyncpg.Pool = await BoundedPool(
        dsn,
        acquire_timeout=limits.acquire_timeout,
        max_queries=50_000,  # asyncpg's defaults, which create_pool would pass
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=limits.command_timeout,
        timeout=limits.connect_timeout,
        **kwargs,
    )
    return pool
