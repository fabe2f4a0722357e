"""One design's run of the million-session workload on one or several instances.

The phases, in order: directory ingest, login ingest, the first-check burst, the
steady state, a restart. Each phase is a window over which the daemons' /metrics, the
daemons' /proc and PostgreSQL (benchmarks/pgprobe.py) are read at both ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import pgprobe
from benchmarks import workload as w
from benchmarks.daemons import Group, environment, merged, wait
from e911d.consumers.topics import ensure_topics

SPREAD = 20.0  # every first check falls due within this window


@dataclass
class Figures:
    """One column of a table: figure name -> formatted value."""

    design: str
    values: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: float, fmt: str = "{:,.0f}") -> None:
        self.values[name] = fmt.format(value)


@dataclass
class Result:
    """The design's totals, and per instance when there are several."""

    total: Figures
    instances: list[Figures] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """Where a run goes: the broker, the scratch database and how to probe it."""

    bootstrap: str
    admin_dsn: str
    dsn: str
    database: str
    postmaster: int
    statements: bool


def _pg(target: Target) -> pgprobe.Snapshot:
    return asyncio.run(
        pgprobe.snapshot(
            target.admin_dsn, target.database, target.postmaster, statements=target.statements
        )
    )


def _batches(f: Figures, kind: str, now: w.Scrape, wall: float) -> None:
    """Where ingest time goes: the share spent storing batches (the transaction),
    the rest being fetching, decoding and waiting (``e911_batch_seconds``)."""
    count = now.get(f'e911_batch_seconds_count{{kind="{kind}"}}')
    spent = now.get(f'e911_batch_seconds_sum{{kind="{kind}"}}')
    if count:
        f.values[f"{kind} batches: count, mean s, share of wall"] = (
            f"{count:,.0f}, {spent / count:.3f}, {spent / wall:.0%}"
        )


def _postgres(f: Figures, what: str, win: pgprobe.Window, per: float, unit: str) -> None:
    """Per-event costs in PostgreSQL over one window: ``per`` events of ``unit``."""
    n = max(1.0, per)
    f.put(f"{what}: WAL bytes / {unit}", win.wal_bytes / n)
    f.put(f"{what}: commits / 1,000 {unit}s", 1000 * win.commits / n, "{:,.1f}")
    f.put(f"{what}: rows written / {unit}", win.rows_written / n, "{:,.2f}")
    f.put(f"{what}: PostgreSQL CPU ms / {unit} (/proc)", 1000 * win.cpu_total / n, "{:.3f}")
    if win.statements:
        f.put(f"{what}: statements / {unit}", win.statements["calls"] / n, "{:,.2f}")
        ms = win.statements["exec_ms"] + win.statements["plan_ms"]
        f.put(f"{what}: statement time ms / {unit} (pg_stat_statements)", ms / n, "{:.3f}")


def _p99(before: w.Scrape, after: w.Scrape) -> str:
    got = w.lateness_p99(before, after)
    if got is None:
        return "—"
    p99, lower, upper = got
    return f"{p99:.2f} (bucket {lower:g}-{upper:g})"


@dataclass
class Progress:
    """Each instance's share of a phase: its last count and when it last moved."""

    started: float
    counts: list[float]
    moved: list[float]
    base: list[float]

    def rates(self) -> list[float]:
        return [
            c / max(1e-3, t - self.started) for c, t in zip(self.counts, self.moved, strict=True)
        ]


def start_following(group: Group, value: Callable[[w.Scrape], float]) -> Progress:
    """Each instance's ``value`` now; take it before producing the phase's events."""
    t0 = time.monotonic()
    base = [value(s) for s in group.scrape()]
    return Progress(t0, [0.0] * len(base), [t0] * len(base), base)


def follow(
    group: Group,
    progress: Progress,
    value: Callable[[w.Scrape], float],
    goal: float,
    what: str,
    within: float = 3600,
) -> float:
    """Poll every instance until their values have grown by ``goal`` in all; returns
    when, and keeps each instance's growth and the time it last grew (its own finish)."""

    def done() -> bool:
        now = [value(s) - b for s, b in zip(group.scrape(), progress.base, strict=True)]
        for i, v in enumerate(now):
            if v != progress.counts[i]:
                progress.counts[i], progress.moved[i] = v, time.monotonic()
        return sum(now) >= goal

    return wait(done, within, what, alive=group.alive)


def _sessions(s: w.Scrape) -> float:
    return s.get("e911_sessions_active")


def _cpu(group: Group) -> list[float]:
    return [w.cpu_seconds(d.pid) for d in group.members]


def measure(design: str, root: Path, target: Target, args: Any) -> Result:
    n, users = args.sessions, args.users
    f = Figures(design)
    prefix = f"m{uuid.uuid4().hex[:6]}"
    env = environment(
        target.bootstrap,
        target.dsn,
        prefix,
        initial_delay=args.initial_delay,
        interval=args.interval,
    )
    topics = [f"{prefix}.{t}" for t in ("sessions", "directory", "alerts", "dlq")]
    asyncio.run(ensure_topics({"bootstrap_servers": target.bootstrap}, topics, 12, 1))
    group = Group(env, root, args.instances, prefix)
    each = [Figures(f"instance {i + 1}") for i in range(args.instances)]
    group.start()
    try:
        wait(group.ready, 180, "daemons ready", alive=group.alive)
        wait(lambda: group.total("e911_partitions_owned") >= 12, 180, "partitions assigned", 0.5)
        # Directory ingest.
        size = w.directory_size(users)
        user_type = f'e911_events_total{{topic="{topics[1]}",type="e911.user.upserted"}}'
        directory = start_following(group, lambda s: s.get(user_type))
        pg0, t0 = _pg(target), time.monotonic()
        now = dt.datetime.now(dt.UTC)
        asyncio.run(w.produce(target.bootstrap, topics[1], w.directory_events(users, now)))
        done = follow(group, directory, lambda s: s.get(user_type), users, "directory ingest")
        f.put("directory ingest (events/s)", size / (done - t0))
        _batches(f, "directory", merged(group.scrape()), (done - t0) * args.instances)
        pg1 = _pg(target)
        _postgres(f, "directory", pgprobe.delta(pg0, pg1), size, "event")
        # Login ingest: logins stamped from now on, due together after initial_delay.
        login_at = dt.datetime.now(dt.UTC)
        logins = start_following(group, _sessions)
        t0, cpu0 = time.monotonic(), _cpu(group)
        events = w.login_events(n, users, login_at, SPREAD)
        sent, produce_s = asyncio.run(w.produce(target.bootstrap, topics[0], events))
        done = follow(group, logins, _sessions, n, "login ingest")
        cpu1 = _cpu(group)
        f.put("login: daemon CPU ms / login", 1000 * (sum(cpu1) - sum(cpu0)) / n, "{:.3f}")
        f.put("login ingest (events/s)", n / (done - t0))
        _batches(f, "sessions", merged(group.scrape()), (done - t0) * args.instances)
        f.put("producer (events/s)", sent / produce_s)
        pg2 = _pg(target)
        _postgres(f, "login", pgprobe.delta(pg1, pg2), n, "login")
        rss = [w.rss_mib(d.pid) for d in group.members]
        f.put("RSS holding N sessions (MiB)", sum(rss))
        for i, (fi, scrape) in enumerate(zip(each, group.scrape(), strict=True)):
            fi.put("sessions held", scrape.get("e911_sessions_active"))
            fi.put("partitions owned", scrape.get("e911_partitions_owned"))
            fi.put("login ingest (events/s, its sessions / its own finish)", logins.rates()[i])
            fi.put(
                "login: daemon CPU ms / login",
                1000 * (cpu1[i] - cpu0[i]) / max(1.0, logins.counts[i]),
                "{:.3f}",
            )
            fi.put("RSS holding its sessions (MiB)", rss[i])
        # The burst.
        first_due = login_at.timestamp() + args.initial_delay
        if time.time() > first_due:
            f.values["note"] = "ingest ran past the first due time: raise --initial-delay"
        wait(lambda: time.time() >= first_due, args.initial_delay + 60, "first due")
        pg3, start, cpu0 = _pg(target), group.scrape(), _cpu(group)
        # Polled every second: each instance's drain to the second, and the best
        # rate over any 5 s between two polls.
        best, last, polls = 0.0, start, [(start[0].at, 0.0)]
        held = [s.get("e911_sessions_active") for s in start]
        drained = [0.0] * len(held)
        while sum(s.checks() for s in last) < n:
            time.sleep(1)
            last = group.scrape()
            polls.append(
                (
                    last[0].at,
                    sum(c.checks() - s0.checks() for c, s0 in zip(last, start, strict=True)),
                )
            )
            at, count = polls[-1]
            for then, before in reversed(polls[:-1]):
                if at - then >= 5:
                    best = max(best, (count - before) / (at - then))
                    break
            for i, (c, s0) in enumerate(zip(last, start, strict=True)):
                if not drained[i] and c.checks() - s0.checks() >= held[i]:
                    drained[i] = time.time() - first_due
            if time.time() - first_due > 3600:
                raise TimeoutError("burst not drained within an hour")
        f.put("burst drained (s after first due)", time.time() - first_due, "{:,.1f}")
        if not best:  # drained within 5 s: the rate over the whole drain
            best = polls[-1][1] / max(1e-3, polls[-1][0] - polls[0][0])
        f.put("burst checks/s (best 5 s)", best)
        cpu1 = _cpu(group)
        f.put("burst: daemon CPU ms / check", 1000 * (sum(cpu1) - sum(cpu0)) / n, "{:.3f}")
        for i, (fi, s0, s1) in enumerate(zip(each, start, last, strict=True)):
            fi.put("burst: checks", s1.checks() - s0.checks())
            fi.put(
                "burst: its sessions drained (s after first due)",
                drained[i] or time.time() - first_due,
                "{:,.1f}",
            )
            fi.put(
                "burst: daemon CPU ms / check",
                1000 * (cpu1[i] - cpu0[i]) / max(1.0, s1.checks() - s0.checks()),
                "{:.3f}",
            )
        wait(lambda: group.total("e911_outbox_pending") == 0, 300, "outbox drained", 0.5)
        raised = merged(group.scrape()).get("e911_alerts_raised_total") - merged(start).get(
            "e911_alerts_raised_total"
        )
        f.put("burst: alerts raised (transitions)", raised)
        burst = pgprobe.delta(pg3, _pg(target))
        _postgres(f, "burst", burst, n, "check")
        f.put("burst: WAL bytes / transition (all burst WAL)", burst.wal_bytes / max(1, raised))
        _steady(f, each, group, target, args)
        _restart(f, group, n, args.restart_within)
    finally:
        group.stop()
    return Result(f, each if args.instances > 1 else [])


def _steady(f: Figures, each: list[Figures], group: Group, target: Target, args: Any) -> None:
    n = args.sessions
    before, cpu0, pg0 = group.scrape(), _cpu(group), _pg(target)
    time.sleep(args.steady_seconds)
    after, cpu1, pg1 = group.scrape(), _cpu(group), _pg(target)
    win = pgprobe.delta(pg0, pg1)
    b, a = merged(before), merged(after)
    checks = a.checks() - b.checks()
    seconds = after[0].at - before[0].at
    f.put("steady checks/s", checks / seconds)
    f.put("steady checks/s asked (N/interval)", n / args.interval)
    in_memory = a.get("e911_checks_decided_in_memory_total") - b.get(
        "e911_checks_decided_in_memory_total"
    )
    f.put("steady: share decided from memory (%)", 100 * in_memory / max(1.0, checks))
    f.values["steady lateness p99 (s)"] = _p99(b, a)
    per = 1000 / max(1.0, checks)
    f.put("daemon CPU s / 1,000 checks", (sum(cpu1) - sum(cpu0)) * per, "{:.3f}")
    f.put("PostgreSQL CPU s / 1,000 checks (/proc, all processes)", win.cpu_total * per, "{:.4f}")
    for kind, spent in win.cpu.items():
        f.put(f"  of which {kind}", spent * per, "{:.4f}")
    if win.statements:
        ms = win.statements["exec_ms"] + win.statements["plan_ms"]
        f.put(
            "PostgreSQL statement s / 1,000 checks (pg_stat_statements)", ms / 1000 * per, "{:.4f}"
        )
        f.put("steady: statements / 1,000 checks", win.statements["calls"] * per, "{:,.1f}")
    f.put("steady: WAL bytes / check", win.wal_bytes / max(1.0, checks), "{:,.1f}")
    f.put("steady: commits / 1,000 checks", win.commits * per, "{:,.2f}")
    f.put("RSS peak (MiB)", sum(w.rss_mib(d.pid, "VmHWM") for d in group.members))
    for i, fi in enumerate(each):
        c = after[i].checks() - before[i].checks()
        fi.put("steady checks/s", c / seconds)
        fi.values["steady lateness p99 (s)"] = _p99(before[i], after[i])
        fi.put("daemon CPU s / 1,000 checks", (cpu1[i] - cpu0[i]) * 1000 / max(1.0, c), "{:.3f}")
        fi.put("daemon CPU (% of a core)", 100 * (cpu1[i] - cpu0[i]) / seconds, "{:.0f}")
        fi.put("RSS peak (MiB)", w.rss_mib(group.members[i].pid, "VmHWM"))
    f.put("PostgreSQL CPU (% of a core, steady)", 100 * win.cpu_total / seconds, "{:.0f}")


def _restart(f: Figures, group: Group, n: int, within: float) -> None:
    """kill -9 the first instance and start it again under the same member id.

    A restart that does not finish within ``within`` seconds is reported as such
    (with the step it stopped at) instead of ending the run: the other figures stand.
    """
    daemon = group.members[0]
    daemon.kill(signal.SIGKILL)
    t0 = daemon.start()
    steps = (
        ("restart: process up, HTTP answers (s)", daemon.answers),
        (
            "restart: partitions assigned and loaded (s)",
            lambda: w.scrape(daemon.port).get("e911_partitions_owned") > 0,
        ),
        (
            "restart → ready, all scheduled (s)",
            lambda: group.ready() and group.total("e911_sessions_active") >= n,
        ),
    )
    late = False
    for name, condition in steps:
        if not late:
            try:
                done = wait(condition, within - (time.monotonic() - t0), name, step=0.1)
                f.put(name, done - t0, "{:.1f}")
                continue
            except TimeoutError:
                late = True
        f.values[name] = f"not within {within:.0f} s"
