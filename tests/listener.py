"""The daemon's LISTEN connection as a DBA sees it (pg_stat_activity), taken down by SQL
and kept down while a test changes the database, then waited for."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from e911d.daemon.store.notify import APPLICATION_NAME
from tests.support import eventually, sample

LISTENER_PID = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()"
)


async def listener_pid(conn: asyncpg.Connection) -> int:
    """The LISTEN connection as a DBA finds it: by its application_name."""
    rows = await conn.fetch(LISTENER_PID, APPLICATION_NAME)
    assert len(rows) == 1, rows
    return int(rows[0]["pid"])


@contextlib.asynccontextmanager
async def listener_down(conn: asyncpg.Connection, admin_dsn: str) -> AsyncIterator[int]:
    """The listener's backend terminated, and kept from reconnecting (the database
    refuses new connections) until the block ends: what the block commits is
    committed before the new LISTEN, so only the catch-up can apply it."""
    pid = await listener_pid(conn)
    name = await conn.fetchval("SELECT current_database()")
    admin = await asyncpg.connect(admin_dsn)  # a database may not lock itself out
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
            yield pid
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def reconnected(
    app: Any, conn: asyncpg.Connection, old_pid: int, within: float = 30.0
) -> None:
    """Until the listener is back on a new backend and says it is up."""

    async def up() -> bool:
        pids = [r["pid"] for r in await conn.fetch(LISTENER_PID, APPLICATION_NAME)]
        return pids not in ([], [old_pid]) and sample(app, "e911_directory_listener_up") == 1

    await eventually(up, within=within, step=0.05)
