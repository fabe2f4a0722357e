"""``e911d directory import FILE --dry-run --impact`` on a million live sessions.

``python -m benchmarks.impact [--sessions 1000000]`` fills a scratch database on the
embedded PostgreSQL: 100 accounts (toggle off) of 50 locations, one /24 IP group each,
2,500 users each (toggle on, assigned location ``i % 50``), N live sessions spread over
them, 30 % on another location's network with their alert open (as the checks would
have raised it), and one session in a hundred with a recent dismissal. The file is
that directory with, in every account, the groups of 5 locations moved to the next
location and 2 % of the users turned off. Timed, in the same run on the same data:

- ``impact (ours)``: the command end to end, as a subprocess (parse the JSON file,
  validate, plan, then the impact), and the same in-process (the database transaction
  alone: read, validate, plan, impact);
- ``dry run, no impact`` (baseline): what ``--dry-run`` cost before, the floor;
- ``one directory only`` (baseline): the impact of a file equal to the database, so
  every session is decided once (no second directory);
- ``the checks' own path`` (baseline): every live session read and decided by the
  checks' runner (``CheckRunner.screen``, chunks of 2,000 ids), under the current
  directory only: the straightforward way to evaluate every session.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.harness import report, scratch_database
from e911d.daemon.commands.directory_file import validate
from e911d.daemon.commands.directory_file.command import Imported, _import
from e911d.daemon.commands.directory_file.impact_run import ImpactOptions, default_workers
from e911d.daemon.commands.embedded import EmbeddedPostgres
from e911d.daemon.core.impact import totals
from e911d.daemon.runtime.logs import configure_logging
from e911d.daemon.store.alerts import AlertStore
from e911d.daemon.store.check_batches import CheckConfig, CheckRunner
from e911d.daemon.store.db import PoolConfig, _init_connection, migrate
from e911d.daemon.store.directory import DirectoryCache
from e911d.daemon.store.directory_bulk import apply_changes

ACCOUNTS = 100
CLI = "e911d directory import directory.json --dry-run --impact --json"
LOCATIONS = 50
MOVED = 5  # groups moved per account
SNOOZE = dt.timedelta(minutes=60)
ADDRESS = {"street": "1 Main St", "city": "Springfield", "country": "US"}


def document(accounts: int, users: int, *, changed: bool) -> dict[str, Any]:
    def group(a: int, loc: int) -> dict[str, Any]:
        target = (loc + 1) % LOCATIONS if changed and loc < MOVED else loc
        return {
            "ip_group_id": f"g{loc}",
            "name": f"G{loc}",
            "location_id": f"l{target}",
            "addresses": [f"10.{a}.{loc}.0/24"],
        }

    return {
        "accounts": [
            {
                "account_id": f"a{a}",
                "e911_recommendations": False,
                "locations": [
                    {"location_id": f"l{i}", "name": f"L{i}", "address": ADDRESS}
                    for i in range(LOCATIONS)
                ],
                "ip_groups": [group(a, i) for i in range(LOCATIONS)],
                "users": [
                    {
                        "user_id": f"u{j}",
                        "e911_recommendations": not (changed and j % 50 == 0),
                        "e911_location_id": f"l{j % LOCATIONS}",
                    }
                    for j in range(users)
                ],
            }
            for a in range(accounts)
        ]
    }


_SESSIONS = """
INSERT INTO sessions (session_id, account_id, user_id, ip, logged_in_at, last_event_at,
                      kafka_partition)
SELECT 's' || i, 'a' || (i % $2), 'u' || ((i / $2) % $3),
       ('10.' || (i % $2) || '.'
        || ((((i / $2) % $3) % 50 + CASE WHEN i % 10 < 3 THEN 1 ELSE 0 END) % 50)
        || '.' || (1 + i % 200))::inet,
       now() - interval '1 hour', now(), i % 12
FROM generate_series(0, $1 - 1) i
"""
# The alert a check raised for each mismatched session: the fingerprint as
# daemon/core/model.py fingerprint_of computes it (assigned, then the recommended id).
_ALERTS = """
INSERT INTO alerts (alert_id, session_id, account_id, user_id, kafka_partition, fingerprint,
                    episode, payload, raised_at, resolved_at, reason)
SELECT 'al-' || s.session_id || '-' || k, s.session_id, s.account_id, s.user_id, 0,
       left(encode(sha256(convert_to('=l' || l.assigned || chr(30) || 'l' || l.other, 'UTF8')),
            'hex'), 32),
       1, jsonb_build_object('assigned_location', jsonb_build_object('location_id',
                             'l' || l.assigned)),
       now() - interval '30 minutes',
       CASE WHEN k = 1 THEN now() - interval '10 minutes' END,
       CASE WHEN k = 1 THEN 'dismissed' END
FROM sessions s
CROSS JOIN LATERAL (SELECT substr(s.user_id, 2)::int % 50 AS assigned) a
CROSS JOIN LATERAL (SELECT a.assigned, (a.assigned + 1) % 50 AS other) l
CROSS JOIN LATERAL (VALUES (0), (1)) v(k)
WHERE (k = 0 AND substr(s.session_id, 2)::bigint % 10 < 3)
   OR (k = 1 AND substr(s.session_id, 2)::bigint % 100 = 5)
"""


async def _fill(conn: asyncpg.Connection, sessions: int, users: int) -> None:
    await migrate(conn)
    checked = validate(document(ACCOUNTS, users, changed=False), check_references=False)
    assert checked.directory is not None, checked.issues[:3]
    async with conn.transaction():
        for entry in checked.directory.accounts:
            await apply_changes(
                conn, [entry.account, *entry.locations, *entry.ip_groups, *entry.users]
            )
    await conn.execute(_SESSIONS, sessions, ACCOUNTS, users)
    await conn.execute(_ALERTS)
    await conn.execute("VACUUM ANALYZE")


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process, and of its reaped children (the forked workers)."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


async def _timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, tuple[float, float], Any]:
    started, (own, children) = time.perf_counter(), _cpu()
    result = await work()
    own_after, children_after = _cpu()
    return time.perf_counter() - started, (own_after - own, children_after - children), result


def _options(dsn: str = "", workers: int = 1) -> ImpactOptions:
    return ImpactOptions(
        now=dt.datetime.now(dt.UTC),
        snooze=SNOOZE,
        workers=workers,
        connect=PoolConfig(dsn, 1, 1, 600) if workers > 1 else None,
    )


async def _checks_path(conn: asyncpg.Connection) -> int:
    runner = CheckRunner(AlertStore("alerts", "urn:bench"), DirectoryCache(), CheckConfig(SNOOZE))
    decided = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        ids = [r[0] for r in await conn.fetch("SELECT session_id FROM sessions")]
        for i in range(0, len(ids), 2_000):
            done, rest = await runner.screen(conn, ids[i : i + 2_000])
            decided += len(done.checked) + len(rest)
    return decided


def _cli(dsn: str, file: Path) -> tuple[float, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("E911_")}
    env |= {"E911_POSTGRES__DSN": dsn, "E911_POSTGRES__COMMAND_TIMEOUT_SECONDS": "600"}
    e911d = str(Path(sys.executable).with_name("e911d"))
    command = [e911d, "directory", "import", str(file), *CLI.split()[4:]]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    doc: dict[str, Any] = json.loads(done.stdout)
    return elapsed, doc


async def measure(admin_dsn: str, sessions: int, work: Path) -> tuple[list[str], str]:
    users = max(1, sessions // 4 // ACCOUNTS)
    async with scratch_database(admin_dsn) as dsn:
        conn = await asyncpg.connect(dsn, command_timeout=1200)
        await _init_connection(conn)
        rows: list[str] = []
        try:
            t0 = time.perf_counter()
            await _fill(conn, sessions, users)
            fill_s = time.perf_counter() - t0
            changed, same = (document(ACCOUNTS, users, changed=c) for c in (True, False))
            file = work / "directory.json"
            file.write_text(json.dumps(changed), "utf-8")
            load = os.getloadavg()[0]

            def dry(data: dict[str, Any], options: ImpactOptions | None) -> Callable[[], Any]:
                return lambda: _import(conn, data, dry_run=True, prune=False, impact=options)

            workers = default_workers()
            s, cpu, out = await _timed(dry(changed, _options(dsn, workers)))
            assert isinstance(out, Imported) and out.impact is not None
            ours = totals(out.impact)
            assert ours.now["raise"] == 0 and ours.now["supersede"] == 0, ours.now  # consistent
            name = f"impact (ours): in-process transaction, {workers} processes"
            rows.append(_row(name, s, cpu, _total(ours)))
            s, cpu, out = await _timed(dry(changed, _options()))
            assert isinstance(out, Imported) and out.impact is not None
            assert _total(totals(out.impact)) == _total(ours)
            rows.append(_row("impact, one process (baseline)", s, cpu, _total(ours)))
            s, cpu, out = await _timed(dry(changed, None))
            rows.append(_row("dry run, no impact (baseline: the floor)", s, cpu, None))
            s, cpu, out = await _timed(dry(same, _options()))
            assert isinstance(out, Imported) and out.impact is not None
            one = _total(totals(out.impact))
            rows.append(
                _row(
                    "one directory only, one process (baseline: a file equal to the DB)",
                    s,
                    cpu,
                    one,
                )
            )
            s, cpu, decided = await _timed(lambda: _checks_path(conn))
            rows.append(
                _row("the checks' own path, current directory only (baseline)", s, cpu, None)
            )
            assert decided == sessions, decided
            cli_s, doc = await asyncio.to_thread(_cli, dsn, file)
            total = doc["impact"]["total"]
            rows.insert(0, _row(f"impact (ours): `{CLI}`, {workers} processes", cli_s, None, total))
            load_after = os.getloadavg()[0]
        finally:
            await conn.close()
    size = (
        f"{sessions:,} live sessions, {ACCOUNTS} accounts x {LOCATIONS} locations, "
        f"{ACCOUNTS * users:,} users, {int(sessions * 0.3):,} open alerts; filled in "
        f"{fill_s:.0f} s; `nproc` {os.cpu_count()}, load average (1 min) {load:.2f} before "
        f"and {load_after:.2f} after the timed runs (the machine is shared)"
    )
    return rows, size


def _total(t: Any) -> dict[str, Any]:
    return {"sessions": t.sessions, "changed": {**t.changed, "sessions": t.changed_sessions}}


def _row(
    name: str, seconds: float, cpu: tuple[float, float] | None, total: dict[str, Any] | None
) -> str:
    counts = ""
    if total is not None:
        c = total["changed"]
        counts = (
            f"{total['sessions']:,} sessions; changed {c['sessions']:,}: raised {c['raised']:,}, "
            f"superseded {c['superseded']:,}, resolved {c['resolved']:,}, "
            f"averted {c['averted']:,}"
        )
    cpu_text = " | " if cpu is None else f"{cpu[0]:.1f} | {cpu[1]:.1f}"
    return f"| {name} | {seconds:.1f} | {cpu_text} | {os.getloadavg()[0]:.1f} | {counts} |"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.impact", description=__doc__)
    p.add_argument("--sessions", type=int, default=1_000_000)
    p.add_argument("--no-write-readme", action="store_true")
    args = p.parse_args(argv)
    configure_logging("json", "error")
    pg = EmbeddedPostgres().start()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="e911d-impact-bench-") as work:
            rows, size = asyncio.run(measure(pg.dsn, args.sessions, Path(work)))
    finally:
        pg.stop()
    table = "\n".join(
        [
            f"- {size}",
            "",
            "| candidate | seconds | CPU s, this process | CPU s, forked workers "
            "| load (1 min) after | counted |",
            "| --- | --: | --: | --: | --: | --- |",
            *rows,
        ]
    )
    command = "python -m benchmarks.impact" + (
        f" --sessions {args.sessions}" if args.sessions != 1_000_000 else ""
    )
    report(
        "impact",
        command,
        table,
        elapsed=time.monotonic() - started,
        write=not args.no_write_readme,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
