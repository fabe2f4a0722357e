"""The ``e911d directory confirmed`` command: arguments, one connection, the output.

Listing reads; ``--forget`` deletes the selected entries (expired ones too) in one
statement and then lists what is left. Forgetting needs ``--account``: a typo must not
wipe every account's entries. A database error goes up to the CLI (exit 1); bad
arguments are refused before anything connects (exit 2).

Every command package has a ``command.py`` (the entry its CLI parser calls) beside
the parts it owns: the same kind of module in parallel places, so the same name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import Final

from e911d.config import Settings
from e911d.daemon.commands.confirmed.render import render_json, render_text
from e911d.daemon.core.retry import BRIEF
from e911d.daemon.store.confirmed_networks import forget, list_entries
from e911d.daemon.store.db import PoolConfig, errors, open_pool, require_tables

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
# As every id in events and directory files (daemon/core/events.py).
_ID: Final = re.compile(r"\A[^\x00-\x1f\x7f]{1,256}\Z")


def id_argument(text: str) -> str:
    """argparse's ``type`` for --account and --user: a refusal is a usage error."""
    if not _ID.match(text):
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r}: an id is 1 to 256 characters, none of them a control character"
        )
    return text


def usage_problem(account_id: str | None, user_id: str | None, do_forget: bool) -> str | None:
    """Why these arguments are refused, or None."""
    if user_id is not None and account_id is None:
        return "--user needs --account: a user id is only unique within its account"
    if do_forget and account_id is None:
        return "--forget needs --account (and optionally --user): it never forgets every account"
    return None


async def confirmed_command(
    settings: Settings,
    *,
    account_id: str | None,
    user_id: str | None,
    do_forget: bool,
    as_json: bool,
) -> int:
    problem = usage_problem(account_id, user_id, do_forget)
    if problem is not None:
        print(f"e911d directory confirmed: {problem}", file=sys.stderr)
        return EXIT_USAGE
    ttl = dt.timedelta(seconds=settings.learning.confirmed_network_ttl_seconds)
    pg = settings.postgres
    config = PoolConfig(pg.dsn.get_secret_value(), 1, 1, pg.command_timeout_seconds)
    forgotten: int | None = None
    async with open_pool(config, backoff=BRIEF) as pool:
        with errors("confirmed"):
            async with pool.acquire() as conn:
                await require_tables(conn, ("confirmed_networks",), "the confirmed networks table")
                if do_forget:
                    assert account_id is not None  # noqa: S101  usage_problem refused it
                    forgotten = await forget(conn, account_id, user_id)
                now = dt.datetime.now(dt.UTC)
                entries = await list_entries(conn, account_id, user_id, now - ttl)
    render = render_json if as_json else render_text
    sys.stdout.write(render(entries, ttl, forgotten))
    sys.stdout.flush()
    return EXIT_OK
