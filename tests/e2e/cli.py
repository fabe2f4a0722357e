"""The installed console script run as an operator runs it: configured by environment
alone (nothing of the test's own ``E911_*`` leaks in), against a given database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg

from e911d.daemon.store.db import migrate

E911D = str(Path(sys.executable).with_name("e911d"))
ROOT = Path(__file__).resolve().parents[2]


def cli_env(dsn: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("E911_")}
    env.update({"E911_POSTGRES__DSN": dsn, **extra})
    return env


async def run_cli(
    dsn: str, *args: str | Path, within: float = 60.0, **extra: str
) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``e911d ARGS``; ``extra`` adds to the environment."""
    proc = await asyncio.create_subprocess_exec(
        E911D,
        *map(str, args),
        env=cli_env(dsn, **extra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    finally:
        await kill(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run_benchmark(module: str, *args: str, within: float) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``python -m MODULE ARGS`` from the repository's
    root, in a session of its own: its broker, PostgreSQL and daemons go with it when
    it has to be killed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", module, *args),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
        await kill(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def kill(proc: asyncio.subprocess.Process) -> None:
    """Kill a process that a test is leaving behind (a failed assertion, a time-out),
    and reap it; one that has exited is left alone."""
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def migrated(database: str) -> str:
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return database
