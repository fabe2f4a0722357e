"""PostgreSQL access: the pool, ordered migrations, named SQL, and error conversion.

Driver errors are converted at this boundary into :class:`DatabaseError`; only the
declared transient ones (:data:`TRANSIENT`) are retried by callers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import asyncpg
import msgspec
import structlog

log = structlog.get_logger("e911d.db")

T = TypeVar("T")

# Whole-schema lock id for migrations ("e911" in ASCII), so concurrent starts serialise.
_MIGRATION_LOCK = 0x65393131

TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


class DatabaseError(Exception):
    """A database failure, with whether retrying may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def convert(exc: BaseException) -> DatabaseError:
    transient = isinstance(exc, TRANSIENT)
    return DatabaseError(f"{type(exc).__name__}: {exc}", transient=transient)


_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load_queries(filename: str) -> dict[str, str]:
    """Named statements from a ``.sql`` file in ``daemon/sql`` (``-- name: x`` blocks)."""
    text = resources.files("e911d.daemon").joinpath("sql", filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("e911d.daemon").joinpath("sql", "migrations")
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name.removesuffix(".sql"), folder.joinpath(name).read_text("utf-8")) for name in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied, in order; idempotent and safe to race."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    if applied_now:
        log.info("migrations_applied", versions=applied_now)
    return applied_now


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog"
    )


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


def _json_loads(text: str) -> Any:
    return msgspec.json.decode(text)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    dsn: str
    min_size: int = 2
    max_size: int = 10
    command_timeout: float = 30.0


async def connect_pool(config: PoolConfig, *, attempts: int = 30) -> asyncpg.Pool:
    """Create the pool, retrying while the database is starting or unreachable."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                config.dsn,
                min_size=config.min_size,
                max_size=config.max_size,
                command_timeout=config.command_timeout,
                init=_init_connection,
            )
            return pool
        except TRANSIENT as exc:
            if attempt == attempts:
                raise convert(exc) from exc
            log.warning("database_connect_retry", attempt=attempt, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        except (asyncpg.PostgresError, ValueError) as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL: {exc}", transient=False) from exc
    raise AssertionError("unreachable")


async def retrying(
    what: str,
    func: Callable[[], Awaitable[T]],
    *,
    stop: asyncio.Event | None = None,
    max_delay: float = 5.0,
) -> T:
    """Run ``func`` until it succeeds, retrying only transient database errors.

    Nothing consumed is dropped while the database is away; the caller simply waits.
    A permanent error propagates so the daemon stops loudly.
    """
    delay = 0.1
    attempt = 0
    while True:
        attempt += 1
        try:
            return await func()
        except TRANSIENT as exc:
            if stop is not None and stop.is_set() and attempt > 3:
                raise convert(exc) from exc
            log.warning("database_retry", operation=what, attempt=attempt, error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"{what}: {type(exc).__name__}: {exc}", transient=False) from exc
