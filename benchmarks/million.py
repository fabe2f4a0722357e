"""A million sessions, end to end, this design against the old one side by side.

``python -m benchmarks.million [--sessions N] [--designs new,baseline]`` starts the
embedded broker and PostgreSQL once, then for each design runs one ``e911d run``
subprocess on a fresh database and fresh topics (12 partitions) and measures:

- directory ingest: accounts x locations x IP groups, then the users, through the topic;
- login ingest stored with offsets: N logins (``login_at`` spread over 20 s, 30 %
  on another location's network), against the producer's own rate in the same run;
- the first-check burst: all N fall due within 20 s (``initial_delay``); the time to
  check them all after the first falls due, and the best 5 s rate (``e911_checks_total``);
- steady state: checks/s and lateness p99 over ``--steady-seconds`` once the burst is
  drained (every session due every ``--interval`` s: N/interval checks/s asked for);
- CPU seconds of the daemon and of PostgreSQL per 1,000 checks (steady window, /proc);
- RSS of the daemon holding N sessions, and its peak (VmHWM);
- restart: kill -9, start again: time until /readyz answers 200 and
  ``e911_sessions_active`` is N.

The baseline is the design at ``--baseline-ref`` (default e3ddfcb, before checks were decided from
memory),
checked out in a temporary git worktree and imported through PYTHONPATH with the same
venv. The results table goes between the ``million`` markers in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from benchmarks import workload as w
from benchmarks.harness import report
from e911d.consumers.topics import ensure_topics
from e911d.daemon.commands.embedded import EmbeddedBroker, EmbeddedPostgres, free_port

REPO = Path(__file__).resolve().parents[1]
SPREAD = 20.0  # every first check falls due within this window
GOALS = {
    "login ingest (events/s)": "≥ 40,000 (≥ 0.8 x producer)",
    "directory ingest (events/s)": "≥ 20,000",
    "burst drained (s after first due)": "≤ 30",
    "steady checks/s": "≥ 50,000 capacity",
    "steady lateness p99 (s)": "≤ 2",
    "restart → ready, all scheduled (s)": "≤ 10",
    "RSS holding N sessions (MiB)": "≤ 500",
}


@dataclass
class Figures:
    design: str
    values: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: float, fmt: str = "{:,.0f}") -> None:
        self.values[name] = fmt.format(value)


def _wait(
    condition: Callable[[], bool],
    within: float,
    what: str,
    step: float = 0.25,
    alive: Callable[[], bool] = lambda: True,
) -> float:
    """Poll until true; returns when (monotonic). Raises with ``what`` on timeout."""
    deadline = time.monotonic() + within
    while not condition():
        if not alive():
            raise RuntimeError(f"{what}: the daemon exited")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:.0f} s")
        time.sleep(step)
    return time.monotonic()


@contextlib.contextmanager
def baseline_tree(ref: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="e911-baseline-"))
    git = ["git", "-C", str(REPO), "worktree"]
    subprocess.run([*git, "add", "--detach", "--force", str(path), ref], check=True)
    try:
        yield path
    finally:
        subprocess.run([*git, "remove", "--force", str(path)], check=False)


class Daemon:
    """One ``e911d run`` subprocess with the benchmark's environment."""

    def __init__(self, env: dict[str, str], pythonpath: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(pythonpath)}
        self.port = int(env["E911_HTTP__PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        code = "import sys; from e911d.daemon.commands.cli import main; sys.exit(main(['run']))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], env=self.env, stdout=subprocess.DEVNULL
        )
        return time.monotonic()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _batches(f: Figures, kind: str, now: w.Scrape, wall: float) -> None:
    """Where ingest time goes: the share spent storing batches (the transaction),
    the rest being fetching, decoding and waiting (``e911_batch_seconds``)."""
    count = now.get(f'e911_batch_seconds_count{{kind="{kind}"}}')
    spent = now.get(f'e911_batch_seconds_sum{{kind="{kind}"}}')
    if count:
        f.values[f"{kind} batches: count, mean s, share of wall"] = (
            f"{count:,.0f}, {spent / count:.3f}, {spent / wall:.0%}"
        )


def _answers(port: int) -> bool:
    try:
        w.scrape(port)
    except OSError:
        return False
    return True


def _env(bootstrap: str, dsn: str, prefix: str, args: argparse.Namespace) -> dict[str, str]:
    return {
        "E911_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "E911_KAFKA__GROUP_ID": prefix,
        "E911_KAFKA__TOPICS__SESSION_EVENTS": f"{prefix}.sessions",
        "E911_KAFKA__TOPICS__DIRECTORY_EVENTS": f"{prefix}.directory",
        "E911_KAFKA__TOPICS__ALERTS": f"{prefix}.alerts",
        "E911_KAFKA__TOPICS__DEAD_LETTER": f"{prefix}.dlq",
        "E911_KAFKA__TOPIC_PARTITIONS": "12",
        "E911_POSTGRES__DSN": dsn,
        "E911_CHECKS__INITIAL_DELAY_SECONDS": str(args.initial_delay),
        "E911_CHECKS__INTERVAL_SECONDS": str(args.interval),
        "E911_CHECKS__TICK_SECONDS": "0.2",
        "E911_HTTP__HOST": "127.0.0.1",
        "E911_HTTP__PORT": str(free_port()),
        "E911_LOG__LEVEL": "warning",
        "E911_LOG__FORMAT": "json",
    }


def _measure(
    design: str, root: Path, bootstrap: str, dsn: str, postmaster: int, args: argparse.Namespace
) -> Figures:
    n, users = args.sessions, args.users
    f = Figures(design)
    prefix = f"m{uuid.uuid4().hex[:6]}"
    env = _env(bootstrap, dsn, prefix, args)
    topics = [f"{prefix}.{t}" for t in ("sessions", "directory", "alerts", "dlq")]
    asyncio.run(ensure_topics({"bootstrap_servers": bootstrap}, topics, 12, 1))
    daemon = Daemon(env, root)
    daemon.start()
    try:
        _wait(lambda: w.ready(daemon.port), 120, "daemon ready", alive=daemon.alive)
        # Directory ingest.
        size = w.directory_size(users)
        t0 = time.monotonic()
        now = dt.datetime.now(dt.UTC)
        sent, _ = asyncio.run(produce(bootstrap, topics[1], w.directory_events(users, now)))
        done = _wait(
            lambda: (
                w.scrape(daemon.port).get(
                    f'e911_events_total{{topic="{topics[1]}",type="e911.user.upserted"}}'
                )
                >= users
            ),
            3600,
            "directory ingest",
        )
        f.put("directory ingest (events/s)", size / (done - t0))
        _batches(f, "directory", w.scrape(daemon.port), done - t0)
        # Login ingest: logins stamped from now on, due together after initial_delay.
        login_at = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        events = w.login_events(n, users, login_at, SPREAD)
        sent, produce_s = asyncio.run(produce(bootstrap, topics[0], events))
        done = _wait(
            lambda: w.scrape(daemon.port).get("e911_sessions_active") >= n, 3600, "login ingest"
        )
        f.put("login ingest (events/s)", n / (done - t0))
        _batches(f, "sessions", w.scrape(daemon.port), done - t0)
        f.put("producer (events/s)", sent / produce_s)
        f.put("RSS holding N sessions (MiB)", w.rss_mib(daemon.pid))
        # The burst.
        first_due = login_at.timestamp() + args.initial_delay
        if time.time() > first_due:
            f.values["note"] = "ingest ran past the first due time: raise --initial-delay"
        _wait(lambda: time.time() >= first_due, args.initial_delay + 60, "first due")
        best, last = 0.0, w.scrape(daemon.port)
        while last.checks() < n:
            time.sleep(5)
            cur = w.scrape(daemon.port)
            best = max(best, (cur.checks() - last.checks()) / (cur.at - last.at))
            last = cur
            if time.time() - first_due > 3600:
                raise TimeoutError("burst not drained within an hour")
        f.put("burst drained (s after first due)", time.time() - first_due, "{:,.1f}")
        f.put("burst checks/s (best 5 s)", best)
        # Steady state.
        before, cpu_d, cpu_pg = w.scrape(daemon.port), w.cpu_seconds(daemon.pid), 0.0
        cpu_pg = w.postgres_cpu(postmaster)
        time.sleep(args.steady_seconds)
        after = w.scrape(daemon.port)
        checks = after.checks() - before.checks()
        f.put("steady checks/s", checks / (after.at - before.at))
        f.put("steady checks/s asked (N/interval)", n / args.interval)
        in_memory = after.get("e911_checks_decided_in_memory_total") - before.get(
            "e911_checks_decided_in_memory_total"
        )
        f.put("steady: share decided from memory (%)", 100 * in_memory / max(1.0, checks))
        f.put("steady lateness p99 (s)", w.p99_bucket(before, after), "≤ {:g}")
        per = 1000 / max(1.0, checks)
        f.put("daemon CPU s / 1,000 checks", (w.cpu_seconds(daemon.pid) - cpu_d) * per, "{:.3f}")
        f.put(
            "PostgreSQL CPU s / 1,000 checks", (w.postgres_cpu(postmaster) - cpu_pg) * per, "{:.3f}"
        )
        f.put("RSS peak (MiB)", w.rss_mib(daemon.pid, "VmHWM"))
        # Restart.
        daemon.kill(signal.SIGKILL)
        t0 = daemon.start()
        up = _wait(lambda: _answers(daemon.port), 600, "restart: HTTP", step=0.1)
        f.put("restart: process up, HTTP answers (s)", up - t0, "{:.1f}")
        owned = _wait(
            lambda: w.scrape(daemon.port).get("e911_partitions_owned") > 0,
            600,
            "restart: partitions assigned",
            step=0.1,
        )
        f.put("restart: partitions assigned and loaded (s)", owned - t0, "{:.1f}")
        done = _wait(
            lambda: w.ready(daemon.port) and w.scrape(daemon.port).get("e911_sessions_active") >= n,
            600,
            "restart",
            step=0.1,
        )
        f.put("restart → ready, all scheduled (s)", done - t0, "{:.1f}")
    finally:
        daemon.kill(signal.SIGTERM)
    return f


async def produce(
    bootstrap: str, topic: str, events: Iterator[tuple[bytes, bytes]]
) -> tuple[int, float]:
    return await w.produce(bootstrap, topic, events)


def _on_scratch_database(admin_dsn: str, fn: Callable[[str], Figures]) -> Figures:
    """Run ``fn(dsn)`` on a fresh database, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:8]}"

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    try:
        return fn(admin_dsn.replace("/postgres?", f"/{name}?", 1))
    finally:
        asyncio.run(sql(f'DROP DATABASE "{name}" WITH (FORCE)'))


def table(results: Sequence[Figures]) -> str:
    names = list(dict.fromkeys(k for r in results for k in r.values))
    head = "| figure | " + " | ".join(r.design for r in results) + " | goal |"
    rule = "|---|" + "--:|" * len(results) + "---|"
    rows = [
        f"| {k} | " + " | ".join(r.values.get(k, "—") for r in results) + f" | {GOALS.get(k, '')} |"
        for k in names
    ]
    return "\n".join([head, rule, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.million", description=__doc__)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: sessions / 4")
    parser.add_argument("--designs", default="new,baseline")
    parser.add_argument("--baseline-ref", default="e3ddfcb")
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--initial-delay", type=float, default=None)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--no-write-readme", action="store_true")
    args = parser.parse_args(argv)
    args.users = args.users or max(1, args.sessions // 4)
    # Long enough for the slowest design's directory and login ingest to finish first.
    args.initial_delay = args.initial_delay or max(90.0, 60 + args.sessions / 3_000)
    started = time.monotonic()
    broker = EmbeddedBroker().start()
    pg = EmbeddedPostgres().start()
    results: list[Figures] = []
    try:
        assert pg.directory is not None
        postmaster = int((pg.directory / "postmaster.pid").read_text().split()[0])
        for design in args.designs.split(","):
            with contextlib.ExitStack() as stack:
                if design == "baseline":
                    name, root = (
                        f"baseline ({args.baseline_ref})",
                        stack.enter_context(baseline_tree(args.baseline_ref)),
                    )
                else:
                    name, root = "new", REPO

                def run(dsn: str, name: str = name, root: Path = root) -> Figures:
                    return _measure(name, root, broker.bootstrap_servers, dsn, postmaster, args)

                results.append(_on_scratch_database(pg.dsn, run))
            print(table(results), flush=True)
    finally:
        broker.stop()
        pg.stop()
    command = f"python -m benchmarks.million --sessions {args.sessions} --designs {args.designs}"
    note = (
        f"; {args.sessions:,} sessions over {args.users:,} users in {w.ACCOUNTS} accounts x "
        f"{w.LOCATIONS} locations, 30 % mismatched; interval {args.interval:g} s, "
        f"initial delay {args.initial_delay:.0f} s"
    )
    report(
        "million",
        command,
        table(results),
        note=note,
        elapsed=time.monotonic() - started,
        write=not args.no_write_readme,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
