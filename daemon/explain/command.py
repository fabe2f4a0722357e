"""The ``e911d explain`` command: parse --ip, read the database, print the answer.

It is the only place that joins building and rendering, so each half stays usable
(and tested) alone. A database error is not turned into an exit code here: it goes
up to the CLI, which reports it the same way for every command.
"""

from __future__ import annotations

import datetime as dt
import sys

import asyncpg

from e911d.config import Settings
from e911d.daemon.db import DatabaseError, PoolConfig, errors, open_pool
from e911d.daemon.explain.build import load_explanation
from e911d.daemon.explain.model import InvalidIp, parse_input_ip
from e911d.daemon.explain.render import render_json, render_text
from e911d.daemon.retry import BRIEF

EXIT_OK = 0
EXIT_INVALID_IP = 2


async def explain_command(
    settings: Settings, *, account: str, user: str, ip: str, as_json: bool
) -> int:
    """0 whenever it explained (any outcome), 2 for a bad --ip, 1 for a database error.

    A database error is raised as :class:`DatabaseError` for the CLI to print, so every
    command reports them the same way.
    """
    try:
        parsed = parse_input_ip(ip)
    except InvalidIp as exc:
        print(f"e911d explain: {exc}", file=sys.stderr)
        return EXIT_INVALID_IP
    config = PoolConfig(settings.postgres.dsn.get_secret_value(), 1, 1)
    async with open_pool(config, backoff=BRIEF) as pool:
        try:
            with errors("explain"):
                async with pool.acquire() as conn:
                    ex = await load_explanation(
                        conn,
                        account_id=account,
                        user_id=user,
                        ip=parsed,
                        snooze=dt.timedelta(seconds=settings.checks.dismiss_snooze_seconds),
                    )
        except DatabaseError as exc:
            if isinstance(exc.__cause__, asyncpg.UndefinedTableError):
                raise DatabaseError(
                    f"the e911d schema is missing ({exc.__cause__}): run `e911d migrate`",
                    transient=False,
                ) from exc
            raise
    print(render_json(ex) if as_json else render_text(ex))
    return EXIT_OK
