"""Connecting to a DSN of several hosts one host at a time, each within the timeout.

asyncpg tries the hosts of a multi-host DSN in turn, but its ``timeout`` covers the
whole attempt: a first host that black-holes (the old primary's address, silent after
a failover) uses all of it, and the next host, the new primary, is never tried. libpq
applies ``connect_timeout`` to each host instead; so does :func:`connect`. A host that
refuses, resets, times out, is starting or stopping, or is not the kind
``target_session_attrs`` asks for (a standby) is passed over for the next one.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import asyncpg


def dsn_hosts(dsn: str) -> list[tuple[str, int | None]]:
    """The (host, port) pairs of a URI DSN, in order: its authority's comma-separated
    list, or its ``host``/``port`` query parameters (how the keyword form and unix
    sockets are written). A port left out is None (the driver's default)."""
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qs(parts.query)
    spec = parts.netloc.rpartition("@")[2]
    if "host" in query:
        names = query["host"][-1].split(",")
        ports = query.get("port", [""])[-1].split(",")
    else:
        names, ports = [], []
        for item in spec.split(",") if spec else ():
            if item.startswith("["):
                name, _, rest = item[1:].partition("]")
                names.append(name)
                ports.append(rest.removeprefix(":"))
            else:
                name, _, port = item.partition(":")
                names.append(name)
                ports.append(port)
    if len(ports) == 1 and len(names) > 1:
        ports *= len(names)  # one port for every host, as libpq reads it
    out: list[tuple[str, int | None]] = []
    for i, name in enumerate(names):
        port = ports[i] if i < len(ports) else ""
        out.append((urllib.parse.unquote(name), int(port) if port.isdigit() else None))
    return out


async def connect(
    dsn: str,
    *,
    timeout: float,  # noqa: ASYNC109  the keyword asyncpg's pool passes
    next_host: tuple[type[BaseException], ...],
    **kwargs: Any,
) -> asyncpg.Connection:
    """``asyncpg.connect``, with ``timeout`` for each host of a multi-host DSN in turn,
    passing over a host on the errors ``next_host`` lists (the error boundary,
    daemon/store/db.py, names them). Also the pool's ``connect``: it passes the pool's
    connection arguments through."""
    hosts = dsn_hosts(dsn)
    if len(hosts) < 2:
        return await asyncpg.connect(dsn, timeout=timeout, **kwargs)
    last: BaseException | None = None
    for host, port in hosts:
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                dsn, host=host, port=port, timeout=timeout, **kwargs
            )
            return conn
        except next_host as exc:
            last = exc
    assert last is not None  # noqa: S101  at least two hosts were tried
    raise last
