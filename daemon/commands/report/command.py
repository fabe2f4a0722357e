"""The ``e911d report`` command: settings to one connection, the read, the output.

A database error is not turned into an exit code here: it goes up to the CLI, which
reports it the same way for every command (exit 1). Bad usage (--since, --top,
--format) is refused by the parser before anything connects (exit 2).

Every command package has a ``command.py`` (the entry its CLI parser calls) beside
the parts it owns: the same kind of module in parallel places, so the same name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Final

from e911d.config import Settings
from e911d.daemon.commands.report.figures import BadDuration, Window, parse_duration
from e911d.daemon.commands.report.query import Selection, read_report, require_schema
from e911d.daemon.commands.report.render import RENDERERS, retention_note
from e911d.daemon.core.retry import BRIEF
from e911d.daemon.store.db import PoolConfig, errors, open_pool

EXIT_OK: Final = 0
MAX_TOP: Final = 1_000


def since_argument(text: str) -> dt.timedelta:
    """argparse's ``type`` for --since: a refusal is a usage error (exit 2)."""
    try:
        return parse_duration(text)
    except BadDuration as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def top_argument(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_TOP:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}: give a whole number from 1 to {MAX_TOP}")
    return n


async def report_command(
    settings: Settings,
    *,
    accounts: list[str],
    since: dt.timedelta,
    fmt: str,
    top: int = 5,
) -> int:
    """Exit 0 with the report on stdout; warnings (retention, unknown accounts) on stderr
    so a piped CSV or JSON stays clean."""
    render = RENDERERS[fmt]
    now = dt.datetime.now(dt.UTC)
    retention = dt.timedelta(seconds=settings.checks.alert_retention_seconds)
    pg = settings.postgres
    config = PoolConfig(pg.dsn.get_secret_value(), 1, 1, pg.command_timeout_seconds)
    async with open_pool(config, backoff=BRIEF) as pool:
        with errors("report"):
            async with pool.acquire() as conn:
                await require_schema(conn)
                report, unknown = await read_report(
                    conn,
                    Selection(tuple(accounts), top),
                    Window(since, now),
                    retention=retention,
                    generated_at=now,
                )
    if (note := retention_note(report)) is not None:
        print(f"e911d report: note: {note}", file=sys.stderr)
    for account_id in unknown:
        print(
            f"e911d report: warning: account {account_id!r} is neither in the directory "
            "nor in the history; listed with zeros",
            file=sys.stderr,
        )
    sys.stdout.write(render(report))
    sys.stdout.flush()
    return EXIT_OK
