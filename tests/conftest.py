"""Fixtures: a real broker and a real PostgreSQL, started and stopped by the suite.

Each test gets its own database and its own topic names, so tests never see each
other's state. The database is a copy of one migrated once per session (the tests
of migrating take ``empty_database`` instead). ``E911D_TEST_POSTGRES_DSN`` points the
suite at an external PostgreSQL (a DSN of a role allowed to create databases) instead
of the embedded one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from e911d.config import Settings, load_settings
from e911d.consumers.topics import ensure_topics
from e911d.daemon.commands.embedded import EmbeddedBroker, EmbeddedPostgres
from e911d.daemon.runtime.app import App
from e911d.daemon.store.db import migrate
from tests.ports import held_port, start_broker
from tests.support import Topics

TESTS = Path(__file__).resolve().parent
# Each folder is also a marker: pytest -m unit
FOLDERS = ("unit", "integration", "e2e", "faults", "container")
# What starts the embedded broker or PostgreSQL (or needs them started).
SERVERS = {"broker", "pg_admin_dsn"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks each test with its folder's marker. A unit test that would start the broker
    or PostgreSQL (through any fixture) belongs in integration/: refused here, so that
    ``pytest -m unit`` never starts either."""
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder not in FOLDERS:
            continue
        item.add_marker(folder)
        servers = SERVERS & set(getattr(item, "fixturenames", ()))
        if folder == "unit" and servers:
            raise pytest.UsageError(
                f"{item.nodeid} is a unit test that uses {sorted(servers)}: move it to "
                "tests/integration/"
            )


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    b = start_broker()
    yield b
    b.stop()


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A loopback port nobody listens on, held for the test (tests/ports.py): a broker
    or database that is down, or one that a test starts on it later."""
    with held_port() as port:
        yield port


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    external = os.environ.get("E911D_TEST_POSTGRES_DSN")
    if external:
        yield external
        return
    pg = EmbeddedPostgres().start()
    yield pg.dsn
    pg.stop()


def _dsn_with_database(dsn: str, database: str) -> str:
    if "?" in dsn:
        base, query = dsn.split("?", 1)
        query = "?" + query
    else:
        base, query = dsn, ""
    scheme, rest = base.split("://", 1)
    head = rest.split("/", 1)[0]
    return f"{scheme}://{head}/{database}{query}"


async def _admin(admin_dsn: str, *statements: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def _fresh_database(admin_dsn: str, template: str | None = None) -> AsyncIterator[str]:
    name = f"e911_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await _admin(admin_dsn, f'CREATE DATABASE "{name}"{copy}')
    yield _dsn_with_database(admin_dsn, name)
    await _admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrated(admin_dsn: str, name: str) -> None:
    await _admin(admin_dsn, f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_dsn_with_database(admin_dsn, name))
    try:
        await migrate(conn)
    finally:
        await conn.close()  # nobody may be connected to a template while it is copied


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """A session fixture's async work, on a loop of its own (each test has its own)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.fixture(scope="session")
def migrated_template(pg_admin_dsn: str) -> Iterator[str]:
    """A database migrated once per session (per worker): each test's ``database`` is a
    copy of it, instead of an empty one that every daemon start migrates again."""
    name = f"e911_template_{uuid.uuid4().hex[:12]}"
    _run(_migrated(pg_admin_dsn, name))
    yield name
    _run(_admin(pg_admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database(pg_admin_dsn: str, migrated_template: str) -> AsyncIterator[str]:
    """A fresh database for one test, with the current schema; dropped afterwards."""
    async with _fresh_database(pg_admin_dsn, migrated_template) as dsn:
        yield dsn


@pytest.fixture
async def other_database(pg_admin_dsn: str, migrated_template: str) -> AsyncIterator[str]:
    """A second fresh database, for a test that runs two independent deployments."""
    async with _fresh_database(pg_admin_dsn, migrated_template) as dsn:
        yield dsn


@pytest.fixture
async def empty_database(pg_admin_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database (no schema): for the tests of migrating and of what an
    unmigrated database gets; dropped afterwards."""
    async with _fresh_database(pg_admin_dsn) as dsn:
        yield dsn


@pytest.fixture
async def topics(broker: EmbeddedBroker) -> Topics:
    t = Topics.unique()
    await ensure_topics(
        {"bootstrap_servers": broker.bootstrap_servers},
        [t.session_events, t.directory_events, t.alerts, t.dead_letter],
        partitions=4,
        replication=1,
    )
    return t


FAST_CHECKS = {
    "initial_delay_seconds": 2.0,
    "interval_seconds": 1.5,
    "tick_seconds": 0.2,
    "sweep_interval_seconds": 0.5,
    "relay_interval_seconds": 0.5,
}


@pytest.fixture
def make_settings(broker: EmbeddedBroker, database: str, topics: Topics) -> Callable[..., Settings]:
    group = f"g{uuid.uuid4().hex[:8]}"

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "kafka": {
                "bootstrap_servers": broker.bootstrap_servers,
                "group_id": group,
                "topics": topics.as_settings(),
                "topic_partitions": 4,
                "poll_timeout_ms": 100,
                # The shortest the settings allow: the embedded broker holds each
                # JoinGroup for half the rebalance timeout (aiokafka: the session
                # timeout), rounded up to its 1 s tick, and a member that joins after
                # another left waits for that member's session too. 6 s cost ~3 s per
                # daemon start and ~11 s per restart in the same group; 1 s costs 1 s.
                # Heartbeats every 200 ms: a daemon's loop may stall ~0.8 s before
                # the broker drops it from the group.
                "session_timeout_ms": 1000,
                "heartbeat_interval_ms": 200,
            },
            "postgres": {"dsn": database, "pool_min_size": 1, "pool_max_size": 4},
            "checks": dict(FAST_CHECKS),
            "http": {"host": "127.0.0.1", "port": 0},
            "log": {"format": "json", "level": "info"},
            "shutdown_timeout_seconds": 5.0,
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return load_settings(environ={}, overrides=base)

    return make


class RunningApp:
    """An App running in a task of the test's event loop."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.task: asyncio.Task[int] = asyncio.create_task(app.run())

    async def ready(self, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while True:
                if self.task.done():
                    raise AssertionError(f"app exited early with {self.task.result()}")
                if self.app.started.is_set() and self.app.ownership.loaded:
                    return
                await asyncio.sleep(0.05)

    async def stop(self) -> int:
        self.app.request_stop()
        return await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def start_app() -> AsyncIterator[Callable[[Settings], Any]]:
    running: list[RunningApp] = []

    async def start(settings: Settings, wait_ready: bool = True) -> RunningApp:
        r = RunningApp(App(settings))
        running.append(r)
        if wait_ready:
            await r.ready()
        return r

    yield start
    for r in running:
        if not r.task.done():
            with contextlib.suppress(Exception):
                await r.stop()
