"""``python -m benchmarks.soak --minutes N`` (``make soak MINUTES=N``): the daemon under
steady churn for N minutes, sampled every minute, failing if a series grows without
bound (the rule: benchmarks/soak/growth.py; the report: benchmarks/README.md, soak).

``e911d run`` is a subprocess, so the RSS and descriptors read from /proc are the
daemon's alone; the embedded broker and PostgreSQL run beside it, and this process
drives the churn and watches the alerts topic (raised alerts get dismissed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.harness import write_section
from benchmarks.soak import growth, probe
from benchmarks.soak.churn import DIRECTORY, Churn, directory_events
from e911d.daemon.commands.embedded import EmbeddedBroker, EmbeddedPostgres, free_port

E911D = str(Path(sys.executable).with_name("e911d"))
SESSION_TOPIC, DIRECTORY_TOPIC, ALERTS_TOPIC = (
    "e911.session-events",
    "e911.directory-events",
    "e911.alerts",
)
SCRAPE_EVERY = 5.0
# After the churn stops: time for the outbox to empty and the watcher to read it all.
SETTLE_SECONDS = 90.0
COLUMNS = (
    ("min", "{:>3}"),
    ("load", "{:>14}"),
    ("events", "{:>6}"),
    ("checks", "{:>6}"),
    ("raised", "{:>6}"),
    ("sessions", "{:>8}"),
    ("rss_mib", "{:>7.1f}"),
    ("open_fds", "{:>8}"),
    ("tasks", "{:>5}"),
    ("lateness_p99_s", "{:>14}"),
    ("outbox_age_s", "{:>12}"),
)


@dataclass(frozen=True, slots=True)
class Options:
    minutes: int
    rate: float
    accounts: int
    users: int
    interval: float
    seed: int
    minute_seconds: float = 60.0
    write_readme: bool = False


@dataclass
class Run:
    """What the soak saw: the rows, and the counters between rows."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the header and the rows, as printed
    sent: int = 0
    alerts_seen: int = 0
    last: probe.Scrape | None = None
    outbox_max: float = 0.0


def daemon_env(options: Options, bootstrap: str, dsn: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("E911_")}
    env.update(
        {
            "E911_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "E911_KAFKA__TOPIC_PARTITIONS": "6",
            "E911_POSTGRES__DSN": dsn,
            "E911_CHECKS__INITIAL_DELAY_SECONDS": "2",
            "E911_CHECKS__INTERVAL_SECONDS": str(options.interval),
            "E911_CHECKS__TICK_SECONDS": "0.5",
            "E911_CHECKS__SWEEP_INTERVAL_SECONDS": "10",
            # Short enough that expiry and the history purge run during the soak.
            "E911_CHECKS__SESSION_TTL_SECONDS": "600",
            "E911_CHECKS__ALERT_RETENTION_SECONDS": "600",
            "E911_CHECKS__DISMISS_SNOOZE_SECONDS": "300",
            "E911_HTTP__HOST": "127.0.0.1",
            "E911_HTTP__PORT": str(port),
            "E911_LOG__LEVEL": "warning",
        }
    )
    return env


async def wait_ready(port: int, proc: asyncio.subprocess.Process, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"e911d run exited with {proc.returncode} before it was ready")
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await reader.readline()
            writer.close()
            if b" 200 " in head:
                return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"e911d run was not ready within {within}s")


async def drive(churn: Churn, producer: AIOKafkaProducer, rate: float, run: Run) -> None:
    """One churn action every 1/rate seconds, on a fixed clock (no drift with load)."""
    loop = asyncio.get_running_loop()
    step = 1.0 / rate
    due = loop.time()
    while True:
        kind, key, event = churn.step()
        topic = DIRECTORY_TOPIC if kind == DIRECTORY else SESSION_TOPIC
        await producer.send(topic, event, key=key.encode())
        run.sent += 1
        due += step
        await asyncio.sleep(max(0.0, due - loop.time()))


async def watch_alerts(bootstrap: str, churn: Churn, run: Run) -> None:
    consumer = AIOKafkaConsumer(
        ALERTS_TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        async for msg in consumer:
            run.alerts_seen += 1
            with contextlib.suppress(ValueError, TypeError):
                churn.alert_shown(json.loads(msg.value))
    finally:
        await consumer.stop()


def row(minute: int, pid: int, now: probe.Scrape, run: Run) -> dict[str, Any]:
    before = run.last or probe.Scrape()
    p99 = growth.quantile(0.99, growth.bucket_delta(now.lateness, before.lateness))
    return {
        "min": minute,
        "load": probe.load_average(),
        "events": run.sent,
        "checks": int(now.get("e911_checks_total") - before.get("e911_checks_total")),
        "raised": int(now.get("e911_alerts_raised_total") - before.get("e911_alerts_raised_total")),
        "sessions": int(now.get("e911_sessions_active")),
        "rss_mib": probe.rss_mib(pid),
        "open_fds": probe.open_fds(pid),
        "tasks": int(now.get("e911_asyncio_tasks")),
        "lateness_p99_s": None if p99 is None else round(p99, 3),
        "outbox_age_s": round(run.outbox_max, 1),
    }


def render_cell(fmt: str, value: object) -> str:
    width = len(fmt.format(0)) if "f}" not in fmt else len(fmt.format(0.0))
    return f"{'-':>{width}}" if value is None else fmt.format(value)


def render(values: dict[str, Any]) -> str:
    cells = [render_cell(fmt, values[name]) for name, fmt in COLUMNS]
    return "| " + " | ".join(cells) + " |"


def header(options: Options) -> str:
    names = [f"{name:>{len(render_cell(fmt, 0))}}" for name, fmt in COLUMNS]
    return "\n".join(
        [
            f"soak: {options.minutes} rows of {options.minute_seconds:g}s, "
            f"{options.rate:g} events/s, "
            f"{options.accounts}x{options.users} users, check interval {options.interval:g}s; "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, load at start {probe.load_average()}",
            "",
            "| " + " | ".join(names) + " |",
            "|" + "|".join("---:" for _ in COLUMNS) + "|",
        ]
    )


async def sample(options: Options, proc: asyncio.subprocess.Process, port: int, run: Run) -> None:
    """Scrape every few seconds (the outbox's age is a gauge: its worst is kept), and
    write a row every minute."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    run.last = now = await asyncio.to_thread(probe.scrape, port)
    for minute in range(1, options.minutes + 1):
        run.sent, run.outbox_max = 0, 0.0
        while (left := start + minute * options.minute_seconds - loop.time()) > 0:
            await asyncio.sleep(min(SCRAPE_EVERY, left))
            if proc.returncode is not None:
                raise RuntimeError(f"e911d run exited with {proc.returncode} during the soak")
            now = await asyncio.to_thread(probe.scrape, port)
            run.outbox_max = max(run.outbox_max, now.get("e911_outbox_oldest_age_seconds"))
        values = row(minute, proc.pid, now, run)
        run.rows.append(values)
        run.last = now
        run.lines.append(render(values))
        print(run.lines[-1], flush=True)


async def settle(port: int, tasks: list[asyncio.Task[None]], run: Run) -> probe.Scrape:
    """Stop the churn, let the daemon publish what it decided and the watcher read it:
    the counts compared in the summary are then final, not a moment of a moving stream."""
    loop = asyncio.get_running_loop()
    tasks[1].cancel()  # the churn
    await asyncio.gather(tasks[1], return_exceptions=True)
    deadline = loop.time() + SETTLE_SECONDS
    final = await asyncio.to_thread(probe.scrape, port)
    while loop.time() < deadline:
        await asyncio.sleep(SCRAPE_EVERY)
        before, final = final, await asyncio.to_thread(probe.scrape, port)
        published = final.get("e911_alert_events_published_total")
        if (
            final.get("e911_outbox_pending") == 0
            and published == before.get("e911_alert_events_published_total")
            and run.alerts_seen >= published
        ):
            break
    return final


async def soak(options: Options, bootstrap: str, dsn: str, log: Path) -> int:
    port = free_port()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            E911D, "run", env=daemon_env(options, bootstrap, dsn, port), stdout=out, stderr=out
        )
    run = Run()
    churn = Churn(options.accounts, options.users, options.seed)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    tasks: list[asyncio.Task[None]] = []
    try:
        await wait_ready(port, proc, 120)
        await producer.start()
        for key, value in directory_events(options.accounts, options.users):
            await producer.send(DIRECTORY_TOPIC, value, key=key.encode())
        await producer.flush()
        run.lines.append(header(options))
        print(run.lines[-1], flush=True)
        tasks = [
            asyncio.create_task(watch_alerts(bootstrap, churn, run)),
            asyncio.create_task(drive(churn, producer, options.rate, run)),
        ]
        sampler = asyncio.create_task(sample(options, proc, port, run))
        done, _ = await asyncio.wait([sampler, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if sampler not in done:
            sampler.cancel()
        for task in done:
            task.result()  # a churn or watcher failure ends the soak with its error
        final = await settle(port, tasks, run)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return report(options, run, final, proc.returncode, churn, log)


def report(
    options: Options, run: Run, final: probe.Scrape, code: int | None, churn: Churn, log: Path
) -> int:
    columns = {name: [r[name] for r in run.rows] for name, _ in COLUMNS}
    verdicts = growth.judge_all(columns)
    invalid = final.get("e911_events_invalid_total")
    published = final.get("e911_alert_events_published_total")
    # After settle(), every event published has had time to be read: one missing is lost.
    bad = growth.failed(verdicts) or invalid > 0 or code != 0 or run.alerts_seen != published
    summary = [
        "churn sent: " + ", ".join(f"{k} {v}" for k, v in sorted(churn.counts.items())),
        f"daemon: {int(final.get('e911_checks_total'))} checks, "
        f"{int(final.get('e911_alerts_raised_total'))} alerts raised, "
        f"{int(published)} alert events published, "
        f"{run.alerts_seen} seen on the topic, {int(invalid)} events dead-lettered, "
        f"exit code {code} on SIGTERM",
    ]
    print("\n" + "\n".join(summary))
    for verdict in verdicts:
        print("  " + verdict.describe())
    if options.write_readme:
        bullets = [*summary, *(v.describe() for v in verdicts)]
        bullets.append(f"verdict: {'FAILED' if bad else 'passed'}")
        text = "\n".join([*run.lines, "", *(f"- {b}" for b in bullets)])
        write_section("soak", text)
    if bad:
        print(f"soak: FAILED (daemon log: {log})", flush=True)
        return 1
    shutil.rmtree(log.parent, ignore_errors=True)
    print("soak: passed", flush=True)
    return 0


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="churn events per second")
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--users", type=int, default=150, help="users per account")
    parser.add_argument("--interval", type=float, default=10.0, help="check interval (s)")
    parser.add_argument("--seed", type=int, default=911)
    parser.add_argument(
        "--minute-seconds",
        type=float,
        default=60.0,
        help="how long a 'minute' (one row) lasts: shorter for a smoke run (the e2e test)",
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="rewrite the soak results in benchmarks/README.md with this run's table",
    )
    a = parser.parse_args(argv)
    if min(a.minutes, a.rate, a.accounts, a.users, a.interval, a.minute_seconds) <= 0:
        parser.error("minutes, rate, accounts, users, interval, minute-seconds must be positive")
    return Options(
        a.minutes,
        a.rate,
        a.accounts,
        a.users,
        a.interval,
        a.seed,
        a.minute_seconds,
        a.write_readme,
    )


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    log = Path(tempfile.mkdtemp(prefix="e911d-soak-")) / "daemon.log"
    broker, pg = EmbeddedBroker(), EmbeddedPostgres()
    # SIGTERM (a `timeout`, a kill) as Ctrl-C: the daemon, the broker and PostgreSQL are
    # stopped on the way out instead of being left running.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        broker.start()
        pg.start()
        return asyncio.run(soak(options, broker.bootstrap_servers, pg.dsn, log))
    except RuntimeError as exc:
        tail = log.read_text("utf-8", errors="replace")[-2000:] if log.exists() else ""
        print(f"soak: FAILED: {exc}\n{tail}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"soak: interrupted (daemon log: {log})", file=sys.stderr, flush=True)
        return 130
    finally:
        broker.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
