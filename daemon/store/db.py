"""PostgreSQL access: the pool, ordered migrations, named SQL, and the error boundary.

Driver errors are converted in one place, :func:`errors`, into :class:`DatabaseError`
with whether retrying may help; nothing else in the daemon names asyncpg's exception
types. Only the declared transient ones (:data:`TRANSIENT`) are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
import structlog

from e911d.config.dsn import DsnError, as_uri, check_dsn, dsn_options
from e911d.daemon.core.retry import FOREVER, STARTUP, Backoff, retry
from e911d.daemon.store import hosts
from e911d.daemon.store.limits import ConnectionLimits, apply_limits, bounded_pool
from e911d.daemon.store.trust import system_context, uses_system_roots

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Whole-schema lock id for migrations ("e911" in ASCII), so concurrent starts serialise.
_MIGRATION_LOCK = 0x65393131

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # A connection whose protocol was left mid-operation (a cancelled query during an
    # outage) says "cannot switch to state …": the pool drops it, the retry gets another.
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)
"""Everything the driver or the network can raise at us."""

TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)
"""The subset that a later attempt may not meet: the server restarting, a lost
connection, a serialisation conflict."""


# What makes libpq (and connect_host_by_host: the connect timeout for each host of the
# DSN in turn, daemon/store/hosts.py) try the next host.
NEXT_HOST: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.TargetServerAttributeNotMatched,
    asyncpg.exceptions.CannotConnectNowError,
)
connect_host_by_host = functools.partial(hosts.connect, next_host=NEXT_HOST)


class DatabaseError(Exception):
    """A database failure, with whether retrying may help."""

    def __init__(self, message: str, *, transient: bool, operation: str = "") -> None:
        super().__init__(message)
        self.transient = transient
        self.operation = operation


PERMANENT: tuple[type[BaseException], ...] = (
    # A DSN option asyncpg cannot use, e.g. sslmode=verify-full with no sslrootcert
    # and no ~/.postgresql/root.crt: an InterfaceError, but no retry will mend it.
    asyncpg.exceptions.ClientConfigurationError,
    # Our trust settings or the server's certificate: an OSError, but not an outage.
    ssl.SSLCertVerificationError,
)


def convert(exc: BaseException, operation: str = "") -> DatabaseError:
    prefix = f"{operation}: " if operation else ""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DatabaseError(
            f"{prefix}PostgreSQL TLS handshake failed: certificate verify failed: "
            f"{exc.verify_message}; check "
            "sslrootcert, sslmode and the host name in E911_POSTGRES__DSN",
            transient=False,
            operation=operation,
        )
    if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
        # What asyncpg makes of the DSN's parameters (or of PG* variables): no retry
        # mends it, and the operator looks for it in the DSN.
        return DatabaseError(
            f"{prefix}E911_POSTGRES__DSN: {exc}", transient=False, operation=operation
        )
    return DatabaseError(
        f"{prefix}{type(exc).__name__}: {exc}",
        transient=isinstance(exc, TRANSIENT) and not isinstance(exc, PERMANENT),
        operation=operation,
    )


def _dsn_error(message: str) -> DatabaseError:
    return DatabaseError(f"E911_POSTGRES__DSN: {message}", transient=False)


def check_dsn_files(dsn: str) -> None:
    """The DSN's certificate and key files must exist and load: asyncpg's
    FileNotFoundError looks like a missing unix socket (PostgreSQL down), and its
    ssl.SSLError for a file that is no certificate like a failed handshake; both would
    be retried for minutes instead of naming the DSN."""
    try:
        options = dsn_options(dsn)
    except DsnError as exc:
        raise _dsn_error(str(exc)) from exc
    for name in ("sslrootcert", "sslcert", "sslkey", "sslcrl"):
        path = options.get(name)
        if path and not (name == "sslrootcert" and uses_system_roots(options)):
            if not Path(path).expanduser().is_file():
                raise _dsn_error(f"{name} file not found: {path}")
    try:
        root = options.get("sslrootcert")
        if root and not uses_system_roots(options):
            ssl.create_default_context(cafile=str(Path(root).expanduser()))
        if options.get("sslcert"):
            key, password = options.get("sslkey"), options.get("sslpassword", "")
            ssl.create_default_context().load_cert_chain(
                str(Path(options["sslcert"]).expanduser()),
                str(Path(key).expanduser()) if key else None,
                password=lambda: password,
            )
    except (OSError, ValueError) as exc:
        raise _dsn_error(f"a certificate or key file it names cannot be used: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ConnectTarget:
    """What asyncpg is handed for a DSN: the DSN in the URI form asyncpg reads, and the
    TLS context when asyncpg cannot build it itself (``sslrootcert=system``)."""

    dsn: str
    ssl: ssl.SSLContext | None = None

    def options(self) -> dict[str, Any]:
        return {} if self.ssl is None else {"ssl": self.ssl}


def connect_target(dsn: str) -> ConnectTarget:
    """Everything about the DSN that no waiting can cure, checked before connecting
    (a permanent :class:`DatabaseError` naming E911_POSTGRES__DSN), so that only an
    unreachable server is retried."""
    try:
        check_dsn(dsn)
    except DsnError as exc:
        raise _dsn_error(str(exc)) from exc
    check_dsn_files(dsn)
    options = dsn_options(dsn)
    if not uses_system_roots(options):
        return ConnectTarget(as_uri(dsn))
    try:
        return ConnectTarget(as_uri(dsn), system_context(options))
    except OSError as exc:
        raise _dsn_error(f"sslrootcert=system: {exc}") from exc


@contextlib.contextmanager
def errors(operation: str) -> Iterator[None]:
    """The boundary: driver errors raised inside become :class:`DatabaseError`."""
    try:
        yield
    except DatabaseError:
        raise
    except DRIVER_ERRORS as exc:
        raise convert(exc, operation) from exc


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, DatabaseError) and exc.transient


_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load_queries(filename: str) -> dict[str, str]:
    """Named statements from a ``.sql`` file in ``daemon/sql`` (``-- name: x`` blocks)."""
    text = (
        resources.files("e911d.daemon.store").joinpath("sql", filename).read_text(encoding="utf-8")
    )
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("e911d.daemon.store").joinpath("sql", "migrations")
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name.removesuffix(".sql"), folder.joinpath(name).read_text("utf-8")) for name in files]


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """The migrations not yet applied, found with reads only (no lock, no DDL)."""
    table = await conn.fetchval("SELECT to_regclass('schema_migrations')")
    done: set[str] = set()
    if table is not None:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [version for version, _ in migration_files() if version not in done]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied, in order; idempotent and safe to race.

    Nothing is locked or created when the schema is current, so a daemon whose role
    may not change the schema starts as well as its owner does.
    """
    if not await pending_migrations(conn):
        return []
    applied_now: list[str] = []
    async with conn.transaction():
        # A migration may run longer than the daemon's statement timeout allows.
        await conn.execute("SET LOCAL statement_timeout = 0")
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


async def prepare_schema(conn: asyncpg.Connection, *, apply: bool) -> None:
    """At start: apply pending migrations (``apply``) or refuse to run on an old schema.

    A role without DDL rights gets told what to do rather than a bare permission error.
    """
    with errors("migrate"):
        pending = await pending_migrations(conn)
        if not pending:
            return
        if not apply:
            raise DatabaseError(
                f"migrations pending: {', '.join(pending)}; run `e911d migrate` as the "
                "schema's owner first",
                transient=False,
                operation="migrate",
            )
        try:
            await migrate(conn)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise DatabaseError(
                f"migrate: {exc}: this role may not change the schema; run `e911d migrate` "
                "as the schema's owner and start with E911_MIGRATE_ON_START=false",
                transient=False,
                operation="migrate",
            ) from exc


async def require_tables(conn: asyncpg.Connection, tables: Sequence[str], what: str) -> None:
    """A command run on a database never migrated says so, instead of a driver error
    about a missing relation in the middle of its work."""
    missing = [t for t in tables if await conn.fetchval("SELECT to_regclass($1) IS NULL", t)]
    if missing:
        raise DatabaseError(
            f"this database has no e911d {what} ({', '.join(missing)} missing): "
            "run `e911d migrate` first",
            transient=False,
        )


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog"
    )


def _initialiser(
    limits: ConnectionLimits, options: dict[str, str]
) -> Callable[[asyncpg.Connection], Awaitable[None]]:
    async def init(conn: asyncpg.Connection) -> None:
        await apply_limits(conn, limits, options)
        await _init_connection(conn)

    return init


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


def json_text(value: Any) -> str:
    """A value as the JSON text the connections' jsonb codec sends, for statements
    that take many documents as one ``text[]`` and cast them (no ``jsonb[]`` codec)."""
    return _json_dumps(value)


def _json_loads(text: str) -> Any:
    return msgspec.json.decode(text)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    dsn: str
    min_size: int = 2
    max_size: int = 10
    command_timeout: float = 30.0
    # The daemon's other bounds (daemon/store/limits.py); the CLI keeps the defaults.
    limits: ConnectionLimits | None = None

    def connection_limits(self) -> ConnectionLimits:
        return self.limits or ConnectionLimits(command_timeout=self.command_timeout)


async def connect_pool(
    config: PoolConfig, *, backoff: Backoff = STARTUP, stop: asyncio.Event | None = None
) -> asyncpg.Pool:
    """Create the pool, retrying while the database is starting or unreachable."""
    target = connect_target(config.dsn)
    limits = config.connection_limits()

    async def connect() -> asyncpg.Pool:
        try:
            with errors("database_connect"):
                return await bounded_pool(
                    target.dsn,
                    limits,
                    min_size=config.min_size,
                    max_size=config.max_size,
                    connect=connect_host_by_host,  # the timeout for each host in turn
                    init=_initialiser(limits, dsn_options(config.dsn)),
                    **target.options(),
                )
        except ValueError as exc:  # a DSN asyncpg cannot parse after all
            raise _dsn_error(f"cannot connect to PostgreSQL: {exc}") from exc

    return await retry(
        "database_connect", connect, retry_if=is_transient, log=log, backoff=backoff, stop=stop
    )


POOL_CLOSE_SECONDS = 1.0


@contextlib.asynccontextmanager
async def open_pool(
    config: PoolConfig, *, backoff: Backoff = STARTUP, stop: asyncio.Event | None = None
) -> AsyncIterator[asyncpg.Pool]:
    """The pool as a component: closed however the block ends, within
    :data:`POOL_CLOSE_SECONDS`; past that (a silent database) its connections are
    aborted, which also ends at once every call still waiting on one."""
    pool = await connect_pool(config, backoff=backoff, stop=stop)
    try:
        yield pool
    finally:
        try:
            with errors("pool_close"):
                await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
        except DatabaseError as exc:
            log.warning("database_pool_aborted", error=str(exc))
            pool.terminate()


async def retrying(what: str, func: Callable[[], Awaitable[T]], *, stop: asyncio.Event) -> T:
    """Run ``func`` under the error boundary until it succeeds, retrying transient errors.

    Nothing consumed is dropped while the database is away; the caller simply waits.
    A permanent error propagates as :class:`DatabaseError` so the daemon stops loudly.
    """

    async def attempt() -> T:
        with errors(what):
            return await func()

    return await retry(what, attempt, retry_if=is_transient, log=log, backoff=FOREVER, stop=stop)
