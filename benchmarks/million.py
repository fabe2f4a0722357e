"""A million sessions, end to end, this design against the old one side by side.

``python -m benchmarks.million [--sessions N] [--designs new,baseline] [--instances K]``
starts the embedded broker and a PostgreSQL once, then for each design runs K
``e911d run`` subprocesses (one consumer group, distinct HTTP ports and static member
ids) on a fresh database and fresh topics (12 partitions) and measures:

- directory ingest: accounts x locations x IP groups, then the users, through the topic;
- login ingest stored with offsets: N logins (``login_at`` spread over 20 s, 30 %
  on another location's network), against the producer's own rate in the same run;
- the first-check burst: all N fall due within 20 s (``initial_delay``); the time to
  check them all after the first falls due, and the best 5 s rate (``e911_checks_total``);
- steady state: checks/s and lateness p99 (interpolated within its histogram bucket)
  over ``--steady-seconds`` once the burst is drained (every session due every
  ``--interval`` s: N/interval checks/s asked for);
- CPU of the daemons and of PostgreSQL per 1,000 checks (steady window): PostgreSQL's
  from /proc (every process of the cluster) and, on a server that has it, from
  ``pg_stat_statements``; WAL bytes, commits and rows per event of each phase;
- RSS of the daemons holding N sessions, and their peak (VmHWM);
- restart: kill -9 of one instance, started again under its member id: time until
  every instance's /readyz answers 200 and ``e911_sessions_active`` sums to N.

The baseline is the design at ``--baseline-ref`` (default bd7d41c, before checks were
decided wholly in memory and transitions written set-based), checked out in a
temporary git worktree and imported through PYTHONPATH with the same venv. The results
go between the ``million`` markers in benchmarks/README.md (``million-instances`` for
K > 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncpg

from benchmarks import pgcluster, pgprobe
from benchmarks import workload as w
from benchmarks.daemons import REPO, baseline_tree
from benchmarks.harness import report
from benchmarks.million_run import Figures, Result, Target, measure
from e911d.daemon.commands.embedded import EmbeddedBroker

BASELINE_REF = "bd7d41c"
GOALS = {
    "login ingest (events/s)": "≥ 0.8 x producer",
    "directory ingest (events/s)": "≥ 20,000",
    "burst drained (s after first due)": "≤ 30",
    "steady checks/s": "≥ 50,000 capacity",
    "steady: share decided from memory (%)": "≥ 99",
    "steady lateness p99 (s)": "≤ 2",
    "restart → ready, all scheduled (s)": "≤ 10",
    "RSS holding N sessions (MiB)": "≤ 500",
}


def _on_scratch_database(admin_dsn: str, fn: Callable[[str, str], Result]) -> Result:
    """Run ``fn(dsn, name)`` on a fresh database, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:8]}"

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    try:
        return fn(admin_dsn.replace("/postgres?", f"/{name}?", 1), name)
    finally:
        asyncio.run(sql(f'DROP DATABASE "{name}" WITH (FORCE)'))


def table(results: Sequence[Figures], goals: bool = True) -> str:
    names = list(dict.fromkeys(k for r in results for k in r.values))
    head = "| figure | " + " | ".join(r.design for r in results) + (" | goal |" if goals else " |")
    rule = "|---|" + "--:|" * len(results) + ("---|" if goals else "")
    rows = [
        f"| {k} | "
        + " | ".join(r.values.get(k, "—") for r in results)
        + (f" | {GOALS.get(k, '')} |" if goals else " |")
        for k in names
    ]
    return "\n".join([head, rule, *rows])


def render(results: Sequence[Result]) -> str:
    """The designs side by side, then each design's instances when there are several."""
    parts = [table([r.total for r in results])]
    for r in results:
        if r.instances:
            parts += ["", f"Per instance, {r.total.design}:", "", table(r.instances, goals=False)]
    return "\n".join(parts)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.million", description=__doc__)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: sessions / 4")
    parser.add_argument("--designs", default="new,baseline")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--instances", type=int, default=1, help="e911d run processes per design")
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--initial-delay", type=float, default=None)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument(
        "--restart-within",
        type=float,
        default=120.0,
        help="give up waiting for the restarted instance after this many seconds",
    )
    parser.add_argument(
        "--postgres-bin",
        type=Path,
        default=None,
        help="run PostgreSQL from this bin/ (e.g. /usr/lib/postgresql/15/bin) with "
        "pg_stat_statements preloaded, instead of the embedded pgserver (which has none)",
    )
    parser.add_argument(
        "--broker-log",
        type=Path,
        default=None,
        help="append the embedded broker's output, with its group coordinator's debug "
        "lines, to this file (what it did with the group's joins and syncs)",
    )
    parser.add_argument("--no-write-readme", action="store_true")
    args = parser.parse_args(argv)
    if args.instances < 1 or args.instances > 12:
        parser.error("--instances must be between 1 and 12 (the topics' partitions)")
    args.explicit = {
        flag: value
        for flag, value, default in (
            ("--users", args.users, None),
            ("--interval", args.interval, 30.0),
            ("--initial-delay", args.initial_delay, None),
            ("--steady-seconds", args.steady_seconds, 60.0),
            ("--restart-within", args.restart_within, 120.0),
        )
        if value != default
    }
    args.users = args.users or max(1, args.sessions // 4)
    # Long enough for the slowest design's directory and login ingest to finish first.
    args.initial_delay = args.initial_delay or max(90.0, 60 + args.sessions / 3_000)
    return args


def command(args: argparse.Namespace) -> str:
    words = [f"python -m benchmarks.million --sessions {args.sessions} --designs {args.designs}"]
    if "baseline" in args.designs and args.baseline_ref != BASELINE_REF:
        words.append(f"--baseline-ref {args.baseline_ref}")
    if args.instances > 1:
        words.append(f"--instances {args.instances}")
    if args.postgres_bin:
        words.append(f"--postgres-bin {args.postgres_bin}")
    words += [f"{flag} {value:g}" for flag, value in args.explicit.items()]
    return " ".join(words)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    broker = EmbeddedBroker(
        log=args.broker_log,
        env={"RUST_LOG": "warn,tansu_broker::coordinator=debug"} if args.broker_log else {},
    ).start()
    cluster = pgcluster.with_statements(args.postgres_bin) if args.postgres_bin else None
    cluster = cluster or pgcluster.embedded()
    results: list[Result] = []
    try:
        statements = asyncio.run(pgprobe.has_statements(cluster.dsn))
        for design in args.designs.split(","):
            with contextlib.ExitStack() as stack:
                if design == "baseline":
                    name = f"baseline ({args.baseline_ref})"
                    root = stack.enter_context(baseline_tree(args.baseline_ref))
                else:
                    name, root = "new", REPO

                def run(dsn: str, database: str, name: str = name, root: Path = root) -> Result:
                    target = Target(
                        broker.bootstrap_servers,
                        cluster.dsn,
                        dsn,
                        database,
                        cluster.postmaster,
                        statements,
                    )
                    return measure(name, root, target, args)

                results.append(_on_scratch_database(cluster.dsn, run))
            print(render(results), flush=True)
    finally:
        broker.stop()
        cluster.stop()
    note = (
        f"; {args.instances} instance(s) per design; "
        f"{args.sessions:,} sessions over {args.users:,} users in {w.ACCOUNTS} accounts x "
        f"{w.LOCATIONS} locations, 30 % mismatched; interval {args.interval:g} s, "
        f"initial delay {args.initial_delay:.0f} s"
    )
    report(
        "million" if args.instances == 1 else "million-instances",
        command(args),
        render(results),
        note=note,
        elapsed=time.monotonic() - started,
        write=not args.no_write_readme,
        postgres=cluster.name,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
