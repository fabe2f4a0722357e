"""What the black-hole trials share: the daemon's timeouts for them, the database
behind a FaultProxy, and the checks that nothing was lost or duplicated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg

from e911d.config.dsn import dsn_options
from tests.fault_proxy import FaultProxy
from tests.support import TopicWatcher

# Short enough that a trial notices within seconds, long enough for a loaded machine.
TIMEOUTS: dict[str, Any] = {
    "postgres": {
        "command_timeout_seconds": 5.0,
        "statement_timeout_seconds": 5.0,
        "acquire_timeout_seconds": 5.0,
        "connect_timeout_seconds": 3.0,
        "tcp_keepalive_idle_seconds": 5.0,
    },
    "kafka": {"request_timeout_ms": 6_000},
}


def through(proxy: FaultProxy, database_dsn: str) -> str:
    """The test database's DSN, over TCP through the proxy."""
    name = database_dsn.split("?", 1)[0].rsplit("/", 1)[1]
    return f"postgresql://postgres@{proxy.address}/{name}"


def pg_proxy_for(database: str) -> Iterator[FaultProxy]:
    options = dsn_options(database)
    socket = f"{options['host']}/.s.PGSQL.{options.get('port', '5432')}"
    proxy = FaultProxy(upstream_path=socket).start()
    yield proxy
    proxy.stop()


async def raised_once(alerts: TopicWatcher, sessions: list[str], within: float) -> None:
    """Every session's alert arrived, and each under one id (redeliveries share it)."""

    def ids() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {s: set() for s in sessions}
        for m in alerts.of_type("e911.alert.raised"):
            if m.data.get("session_id") in out:
                out[m.data["session_id"]].add(str(m.event["id"]))
        return out

    await alerts.wait_for(lambda _m: all(ids().values()), within)
    assert all(len(v) == 1 for v in ids().values()), ids()


async def stored(database: str, sessions: list[str]) -> bool:
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT session_id FROM sessions")
    finally:
        await conn.close()
    return {r["session_id"] for r in rows} >= set(sessions)
