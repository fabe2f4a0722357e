"""The ``e911d report networks`` command (docs/spec.md#networks-nobody-configured):
settings to one connection, the read, the output.

A database error goes up to the CLI (exit 1), as for every command; bad usage
(--since, --min-users, --format) is refused by the parser before anything connects
(exit 2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Final

from e911d.config import Settings
from e911d.daemon.commands.networks.recorded import (
    Query,
    account_toggles,
    read_networks,
    require_schema,
)
from e911d.daemon.commands.networks.render import RENDERERS, retention_note
from e911d.daemon.commands.networks.suggestions import render_directory, suggested_accounts
from e911d.daemon.core.retry import BRIEF
from e911d.daemon.store.db import PoolConfig, errors, open_pool

EXIT_OK: Final = 0
MAX_MIN_USERS: Final = 1_000_000
FORMATS: Final = (*RENDERERS, "directory")


def min_users_argument(text: str) -> int:
    """argparse's ``type`` for --min-users: a refusal is a usage error (exit 2)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_MIN_USERS:
        raise argparse.ArgumentTypeError(
            f"{text[:20]!r}: give a whole number from 1 to {MAX_MIN_USERS}"
        )
    return n


async def networks_command(
    settings: Settings,
    *,
    accounts: list[str],
    since: dt.timedelta,
    min_users: int,
    fmt: str,
) -> int:
    """Exit 0 with the report (or the directory file) on stdout; notes on stderr, so
    that a piped file stays clean."""
    now = dt.datetime.now(dt.UTC)
    query = Query(
        accounts=tuple(accounts),
        since=since,
        min_users=min_users,
        agreement=settings.learning.agreement,
        retention=dt.timedelta(seconds=settings.checks.alert_retention_seconds),
    )
    pg = settings.postgres
    config = PoolConfig(pg.dsn.get_secret_value(), 1, 1, pg.command_timeout_seconds)
    async with open_pool(config, backoff=BRIEF) as pool:
        with errors("report networks"):
            async with pool.acquire() as conn:
                await require_schema(conn)
                report = await read_networks(conn, query, now)
                toggles = (
                    await account_toggles(conn, suggested_accounts(report))
                    if fmt == "directory"
                    else {}
                )
    if (note := retention_note(report)) is not None:
        print(f"e911d report networks: note: {note}", file=sys.stderr)
    if fmt == "directory":
        text = render_directory(report, toggles)
    else:
        text = RENDERERS[fmt](report)
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_OK
