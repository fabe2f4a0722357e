"""The checks tick keeps the event loop free while it decides from memory.

A chunk decided wholly from memory awaits nothing, so without a yield between chunks
a pass over a million sessions held the loop for seconds: the 1M benchmark's
/metrics scrape timed out after the burst (10 s) and the consumer missed heartbeats.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any, cast

from e911d.config import load_settings
from e911d.daemon.core.decision_inputs import AccountInputs, SessionInputs, UserInputs
from e911d.daemon.core.evaluation import AccountDirectory
from e911d.daemon.core.memo import MemoBook
from e911d.daemon.core.model import Account, IpGroup, Location, User
from e911d.daemon.services.checks import Checks
from e911d.daemon.services.deps import Runtime
from e911d.daemon.services.metrics import Metrics
from e911d.daemon.services.relay import Relay
from e911d.schedulers import CheckSchedule

SESSIONS = 10_000
BATCH = 100


class _NoDatabase(Checks):
    recorded: list[tuple[str, str]]

    async def refresh_versions(self) -> None:
        """The versions are set by the test; nothing to read."""

    def _record(self, checked: Iterable[tuple[str, str]]) -> None:
        """What would be written to checked_sessions (its statement runs against
        PostgreSQL in tests/integration/test_alert_history.py)."""
        self.recorded += checked


async def test_a_tick_decided_from_memory_lets_other_tasks_run_between_chunks() -> None:
    schedule = CheckSchedule(0.0, 300.0)
    for i in range(SESSIONS):
        schedule.add(f"s{i}", 0.0, 0, 0.0)  # all due since the epoch
    memos = MemoBook(schedule)
    directory = AccountDirectory(
        "acme",
        [Location("hq", "HQ")],
        [IpGroup("g", "g", "hq", (ipaddress.ip_network("10.0.0.0/24"),))],
    )
    started = memos.begin()
    user = UserInputs(User("acme", "u", True, "hq"))
    held = AccountInputs("acme", Account("acme", True), directory, (1, 1), {"u": user}, started)
    memos.accounts_read(started, [held])
    session = SessionInputs("acme", "u", ipaddress.IPv4Address("10.0.0.7").packed, None, None)
    memos.sessions_read(memos.begin(), [(f"s{i}", session) for i in range(SESSIONS)])
    metrics = Metrics()
    rt: Any = SimpleNamespace(
        stopping=asyncio.Event(),
        settings=load_settings(environ={}, overrides={"checks": {"batch_size": BATCH}}),
        memos=memos,
        schedule=schedule,
        ownership=SimpleNamespace(partitions={0}),
        metrics=metrics,
        alerts=None,
        cache=None,
    )
    checks = _NoDatabase(cast(Runtime, rt), cast(Relay, None))
    checks.recorded = []

    turns = 0

    async def other_work() -> None:  # /metrics, heartbeats, the consumer: anyone
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    neighbour = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    started = turns
    await checks.tick()
    neighbour.cancel()

    in_memory = metrics.registry.get_sample_value("e911_checks_decided_in_memory_total")
    assert in_memory == SESSIONS  # every check decided, none asked the database
    # ... and each one handed to the sessions-checked record, with its account.
    assert sorted(checks.recorded) == sorted((f"s{i}", "acme") for i in range(SESSIONS))
    assert turns - started >= SESSIONS // BATCH - 1  # the neighbour ran between chunks
