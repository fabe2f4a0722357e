"""The commands ``e911d directory import FILE`` and ``e911d directory export``: the
database connection, the one transaction of an import, and what the operator reads.

Every command package has a ``command.py`` (the entry its CLI parser calls) beside
the parts it owns: the same kind of module in parallel places, so the same name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import asyncpg
import structlog

from e911d.config import Settings
from e911d.daemon.commands.directory_file.export import Exported, export_document, render
from e911d.daemon.commands.directory_file.field_rules import Issue
from e911d.daemon.commands.directory_file.files import FileProblem, account_ids, load
from e911d.daemon.commands.directory_file.impact_render import render_json, render_text
from e911d.daemon.commands.directory_file.impact_run import (
    ImpactOptions,
    default_workers,
    measure_impact,
)
from e911d.daemon.commands.directory_file.plan import Plan, make_plan
from e911d.daemon.commands.directory_file.validation import Validated, validate
from e911d.daemon.core.impact import AccountImpact
from e911d.daemon.core.retry import BRIEF
from e911d.daemon.runtime.geoip import GeoIpError, open_geoip
from e911d.daemon.services.deps import learning_config
from e911d.daemon.store.db import PoolConfig, errors, open_pool, require_tables
from e911d.daemon.store.directory import apply_change
from e911d.daemon.store.directory_rows import Rows, Stored, read_rows

log = structlog.get_logger(__name__)

T = TypeVar("T")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
_TABLES: Final = ("accounts", "users", "locations", "ip_groups", "ip_group_networks")


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def report_unreadable(path: Path, problem: FileProblem, consequence: str) -> None:
    """A file that is not YAML or JSON (or too big), as the import and the lint say it."""
    _err(f"{path}: {problem}")
    _err(f"e911d: {path} is invalid; {consequence}")


def report_issues(source: str, issues: Sequence[Issue], consequence: str) -> None:
    """Every issue with its path, then one summary line, on stderr: how the import and
    the lint show a directory they cannot take."""
    for issue in issues:
        _err(issue.render(source))
    n = len(issues)
    _err(f"e911d: {source} is invalid ({n} error{'s' if n != 1 else ''}); {consequence}")


async def in_database(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on one connection; driver errors become :class:`DatabaseError`,
    which the CLI prints in one line (exit 1)."""
    pg = settings.postgres
    config = PoolConfig(pg.dsn.get_secret_value(), 1, 1, pg.command_timeout_seconds)
    async with open_pool(config, backoff=BRIEF) as pool:
        with errors("directory"):
            async with pool.acquire() as conn:
                await require_tables(conn, _TABLES, "directory tables")
                return await work(conn)


@dataclass(frozen=True, slots=True)
class Imported:
    """A valid file's plan and, when asked, its impact on live sessions."""

    plan: Plan
    impact: list[AccountImpact] | None = None


async def _import(
    conn: asyncpg.Connection,
    data: object,
    *,
    dry_run: bool,
    prune: bool,
    impact: ImpactOptions | None = None,
) -> Validated | Imported:
    """Validate against the database and apply, in one transaction: all or nothing.

    Repeatable read: the plan is computed from one snapshot, and a concurrent write to
    a row the plan rewrites fails the import instead of being overwritten unseen. A dry
    run's transaction is read only; its impact, if asked, reads the same snapshot.
    """
    async with conn.transaction(isolation="repeatable_read", readonly=dry_run):
        stored = Stored.of(await read_rows(conn, account_ids(data)))
        checked = validate(data, db_locations=stored.location_ids(), prune=prune)
        if checked.directory is None:
            return checked
        plan = make_plan(checked.directory, stored, prune=prune)
        if not dry_run:
            for step in plan.steps:
                await apply_change(conn, step.change)
            return Imported(plan)
        if impact is None:
            return Imported(plan)
        ids = [entry.account.account_id for entry in checked.directory.accounts]
        return Imported(plan, await measure_impact(conn, ids, plan, impact))


def _print_plan(plan: Plan, *, dry_run: bool) -> None:
    for step in plan.steps:
        print(step.line)
    n = len(plan.steps)
    changes = f"{n} change{'s' if n != 1 else ''}"
    if dry_run:
        print(f"{plan.summary()}; dry run: would apply {changes}, nothing written")
    else:
        print(f"{plan.summary()}; applied {changes}")


async def import_command(
    settings: Settings,
    path: Path,
    *,
    dry_run: bool,
    prune: bool,
    impact: bool = False,
    as_json: bool = False,
) -> int:
    """Exit 0 when applied (or, with ``dry_run``, when it would apply), 1 when the file
    is invalid (every error on stderr, nothing written) or the configured GeoIP
    database cannot be used for the impact. ``impact`` needs ``dry_run``; ``as_json``
    needs ``impact`` (the CLI refuses either alone)."""
    try:
        data = await asyncio.to_thread(load, path)
    except FileProblem as exc:
        report_unreadable(path, exc, "nothing was written")
        return EXIT_FAILED
    if impact:
        try:
            with open_geoip(settings.geoip) as geo:
                pg = settings.postgres
                options = ImpactOptions(
                    now=dt.datetime.now(dt.UTC),
                    snooze=dt.timedelta(seconds=settings.checks.dismiss_snooze_seconds),
                    geo=geo,
                    learning=learning_config(settings),
                    workers=default_workers(),
                    connect=PoolConfig(pg.dsn.get_secret_value(), 1, 1, pg.command_timeout_seconds),
                )
                outcome = await in_database(
                    settings,
                    lambda conn: _import(conn, data, dry_run=True, prune=prune, impact=options),
                )
        except GeoIpError as exc:
            _err(f"e911d: {exc}")
            return EXIT_FAILED
    else:
        outcome = await in_database(
            settings, lambda conn: _import(conn, data, dry_run=dry_run, prune=prune)
        )
    if isinstance(outcome, Validated):
        report_issues(str(path), outcome.issues, "nothing was written")
        return EXIT_FAILED
    plan = outcome.plan
    if outcome.impact is not None and as_json:
        print(json.dumps(render_json(plan, outcome.impact), indent=2))
        return EXIT_OK
    _print_plan(plan, dry_run=dry_run)
    if outcome.impact is not None:
        for line in render_text(outcome.impact):
            print(line)
    if not dry_run and plan.steps:  # an audit trail of writes, next to the daemon's own logs
        log.info("directory_imported", file=str(path), changes=len(plan.steps), prune=prune)
    return EXIT_OK


async def snapshot(conn: asyncpg.Connection, accounts: Sequence[str] | None) -> Rows:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await read_rows(conn, accounts)


def _export_warnings(exported: Exported) -> list[str]:
    lines = []
    if exported.orphans:
        counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(exported.orphans.items()))
        lines.append(
            f"e911d: warning: skipped the rows of {len(exported.orphan_accounts)} account id(s) "
            f"that have no accounts row ({counts})"
        )
    if exported.dangling:
        lines.append(
            f"e911d: warning: {len(exported.dangling)} reference(s) name no location of "
            f"their account (first: {exported.dangling[0]}); an import of this file "
            "refuses them until they are fixed"
        )
    return lines


async def export_command(
    settings: Settings, *, accounts: list[str], fmt: str, output: Path | None
) -> int:
    if fmt not in ("yaml", "json"):
        _err(f"e911d: unknown format {fmt!r}: use yaml or json")
        return EXIT_FAILED
    wanted = sorted(set(accounts)) or None
    rows = await in_database(settings, lambda conn: snapshot(conn, wanted))
    present = {r["account_id"] for r in rows.accounts}
    unknown = [a for a in wanted or () if a not in present]
    if unknown:
        for account_id in unknown:
            _err(f"e911d: no account {account_id!r} in the database")
        return EXIT_FAILED
    exported = export_document(rows)
    for line in _export_warnings(exported):
        _err(line)
    data = render(exported.document, fmt).encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    try:
        await asyncio.to_thread(output.write_bytes, data)
    except OSError as exc:
        _err(f"e911d: cannot write {output}: {exc.strerror or exc}")
        return EXIT_FAILED
    _err(f"e911d: exported {len(exported.document['accounts'])} account(s) to {output}")
    return EXIT_OK
