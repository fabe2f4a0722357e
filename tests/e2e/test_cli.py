"""The console script as an operator runs it: a subprocess configured by environment,
fed by an independent Kafka client, observed through Kafka and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from e911d.daemon.store.db import migration_files
from tests.e2e.cli import kill
from tests.support import Producer, TopicWatcher, directory, http_get, login, logout

E911D = str(Path(sys.executable).with_name("e911d"))

pytestmark = pytest.mark.e2e


def daemon_env(broker, topics, database: str, group: str) -> dict[str, str]:
    """The daemon's environment; its operations port is one it picks (start_daemon)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("E911_")}
    env.update(
        {
            "E911_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "E911_KAFKA__GROUP_ID": group,
            "E911_KAFKA__TOPICS__SESSION_EVENTS": topics.session_events,
            "E911_KAFKA__TOPICS__DIRECTORY_EVENTS": topics.directory_events,
            "E911_KAFKA__TOPICS__ALERTS": topics.alerts,
            "E911_KAFKA__TOPICS__DEAD_LETTER": topics.dead_letter,
            "E911_KAFKA__SESSION_TIMEOUT_MS": "1000",  # as make_settings (tests/conftest.py)
            "E911_KAFKA__HEARTBEAT_INTERVAL_MS": "200",
            "E911_KAFKA__POLL_TIMEOUT_MS": "100",
            "E911_POSTGRES__DSN": database,
            "E911_CHECKS__INITIAL_DELAY_SECONDS": "3",
            "E911_CHECKS__INTERVAL_SECONDS": "2",
            "E911_CHECKS__TICK_SECONDS": "0.2",
            "E911_CHECKS__RELAY_INTERVAL_SECONDS": "0.5",
            "E911_HTTP__HOST": "127.0.0.1",
            "E911_HTTP__PORT": "0",
            "E911_LOG__FORMAT": "json",
        }
    )
    return env


def _append(log: Path):  # type: ignore[no-untyped-def]
    return log.open("ab")


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


def _size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def _listening_port(log: Path, offset: int) -> int | None:
    """The port of the ``http_listening`` event logged past ``offset``, once there."""
    with log.open("rb") as f:
        f.seek(offset)
        for line in f.read().splitlines():
            if line.startswith(b"{"):
                event = json.loads(line)
                if event.get("event") == "http_listening":
                    return int(event["port"])
    return None


async def start_daemon(
    env: dict[str, str], log: Path, exe: str | Path = E911D, cwd: Path | None = None
) -> tuple[asyncio.subprocess.Process, int]:
    """``e911d run`` until ready: the process and the operations port it bound.

    The port is its own choice (E911_HTTP__PORT=0), read back from its log, so no
    other test can take it first. A start that fails kills the process.
    """
    offset = _size(log)
    out = _append(log)
    proc = await asyncio.create_subprocess_exec(
        exe, "run", env=env, cwd=cwd, stdout=out, stderr=asyncio.subprocess.STDOUT
    )
    out.close()
    try:
        port = None
        async with asyncio.timeout(40):
            while True:
                if proc.returncode is not None:
                    raise AssertionError(f"e911d exited {proc.returncode}: {_tail(log)}")
                port = port or _listening_port(log, offset)
                if port is not None:
                    try:
                        status, _ = await http_get(port, "/readyz")
                        if status == 200:
                            return proc, port
                    except OSError:
                        pass
                await asyncio.sleep(0.1)
    except BaseException:
        await kill(proc)
        raise


def metric(body: str, line_prefix: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith(line_prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_daemon_end_to_end_with_kill_and_sigterm(broker, topics, database, tmp_path):
    env = daemon_env(broker, topics, database, f"g{uuid.uuid4().hex[:8]}")
    log = tmp_path / "e911d.log"
    proc, port = await start_daemon(env, log)
    try:
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(
                topics.directory_events,
                directory(users={"miss": (False, "hq"), "match": (False, "hq")}),
                "acme",
            )
            t0 = time.time()
            await p.send(
                topics.session_events, login("acme", "miss", "s-miss", "198.51.100.7"), "miss"
            )
            await p.send(
                topics.session_events, login("acme", "match", "s-ok", "203.0.113.7"), "match"
            )
            raised = await alerts.wait_count("e911.alert.raised", 1, within=20)
            delay = raised[0].received_at.timestamp() - t0
            assert 2.8 <= delay <= 6.0, delay  # login + 3 s initial delay
            assert raised[0].data["session_id"] == "s-miss"

            # kill -9: no goodbye, no flush. The next process resumes from PostgreSQL.
            proc.kill()
            assert await proc.wait() == -signal.SIGKILL
            proc, port = await start_daemon(env, log)
            async with asyncio.timeout(30):
                while True:
                    _, body = await http_get(port, "/metrics")
                    if (
                        metric(body, 'e911_checks_total{outcome="mismatch"}') >= 2
                        and metric(body, 'e911_checks_total{outcome="match"}') >= 2
                    ):
                        break
                    await asyncio.sleep(0.2)
            assert metric(body, "e911_sessions_active") == 2
            # At least once: a redelivery keeps its id, but no second alert is ever raised.
            ids = {m.data["alert_id"] for m in alerts.of_type("e911.alert.raised")}
            assert len(ids) == 1
            assert alerts.of_type("e911.alert.raised", "s-ok") == []

            await p.send(topics.session_events, logout("acme", "miss", "s-miss"), "miss")
            resolved = await alerts.wait_count("e911.alert.resolved", 1, within=10)
            assert resolved[0].data["reason"] == "session_ended"
            assert resolved[0].data["alert_id"] in ids

            t_stop = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 12)
            assert code == 0, _tail(log)
            assert time.monotonic() - t_stop < 10
    finally:
        await kill(proc)
    text = log.read_text()
    assert '"event": "daemon_stopped"' in text
    assert '"event": "alert_raised"' in text and '"session_id": "s-miss"' in text


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        E911D,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await kill(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("E911_")}


async def test_bad_configuration_fails_fast_naming_the_key(tmp_path):
    code, _, err = await run_cli("run", env={**base_env(), "E911_CHECKS__INTERVL_SECONDS": "5"})
    assert code == 2
    assert "E911_CHECKS__INTERVL_SECONDS" in err
    code, _, err = await run_cli("run", env={**base_env(), "E911_HTTP__PORT": "not-a-port"})
    assert code == 2
    assert "env E911_HTTP__PORT (http.port)" in err and "'not-a-port'" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[checks]\ninitial_delay_seconds = -1\n")
    code, _, err = await run_cli("run", "--config", str(bad), env=base_env())
    assert code == 2
    assert f"file {bad}: key checks.initial_delay_seconds" in err and "(got -1)" in err


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"E911_POSTGRES__DSN": "mysql://x"}, "env E911_POSTGRES__DSN (postgres.dsn)"),
        (
            {"E911_POSTGRES__DSN": "postgresql://db/x?sslmode=verify"},
            "sslmode='verify' is not one of",
        ),
        (
            {"E911_KAFKA__SESSION_TIMEOUT_MS": "6000", "E911_KAFKA__HEARTBEAT_INTERVAL_MS": "2500"},
            "E911_KAFKA__HEARTBEAT_INTERVAL_MS (2500) must be at most a third",
        ),
        (
            {"E911_KAFKA__TOPICS__DEAD_LETTER": "e911.alerts"},
            "E911_KAFKA__TOPICS__ALERTS and E911_KAFKA__TOPICS__DEAD_LETTER",
        ),
        (
            {"E911_KAFKA__SECURITY_PROTOCOL": "SSL", "E911_KAFKA__SASL_USERNAME": "svc"},
            "E911_KAFKA__SASL_USERNAME set but security_protocol=SSL",
        ),
        ({"E911_SHUTDOWN_TIMEOUT_SECONDS": "20"}, "env E911_SHUTDOWN_TIMEOUT_SECONDS"),
        (
            {
                "E911_POSTGRES__DSN": "postgresql://x@y/z",
                "E911_POSTGRES__DSN_FILE": "/etc/hostname",
            },
            "env E911_POSTGRES__DSN; env E911_POSTGRES__DSN_FILE",
        ),
        (
            {"E911_KAFKA__SASL_PASSWORD_FILE": "/nonexistent/sasl"},
            "env E911_KAFKA__SASL_PASSWORD_FILE (kafka.sasl_password_file): "
            "Value error, cannot read /nonexistent/sasl",
        ),
        (
            {"E911_CHECKS__MAX_RECOMMENDED_LOCATIONS": "0"},
            "env E911_CHECKS__MAX_RECOMMENDED_LOCATIONS (checks.max_recommended_locations)",
        ),
        (
            {"E911_CHECKS__MAX_RECOMMENDED_LOCATIONS": "20000"},
            "E911_CHECKS__MAX_RECOMMENDED_LOCATIONS (checks.max_recommended_locations): "
            "Input should be less than or equal to 1000",
        ),
    ],
    ids=[
        "scheme",
        "sslmode",
        "heartbeat",
        "topics",
        "sasl",
        "shutdown",
        "both",
        "unreadable",
        "no_locations_listed",
        "too_many_listed",
    ],
)
async def test_config_refuses_what_run_would_refuse_naming_the_setting(env, named):
    code, out, err = await run_cli("config", env={**base_env(), **env})
    assert code == 2, out
    assert named in err
    assert out == ""


async def test_the_test_suites_own_variable_does_not_break_the_cli():
    env = {**base_env(), "E911D_TEST_POSTGRES_DSN": "postgresql://postgres@db/x"}
    code, out, err = await run_cli("config", env=env)
    assert code == 0, err
    assert "[kafka]" in out


async def test_config_prints_effective_settings_with_secrets_masked(tmp_path):
    cfg = tmp_path / "e911d.toml"
    cfg.write_text('[checks]\ninterval_seconds = 42\n[kafka]\nbootstrap_servers = "k:1"\n')
    env = {
        **base_env(),
        "E911_POSTGRES__DSN": "postgresql://svc:hunter2@db:5432/e911d",
        "E911_KAFKA__BOOTSTRAP_SERVERS": "k:2",
    }
    code, out, _ = await run_cli("config", "--config", str(cfg), env=env)
    assert code == 0
    assert "hunter2" not in out
    assert "postgresql://svc:***@db:5432/e911d" in out
    assert "interval_seconds = 42.0" in out
    assert 'bootstrap_servers = "k:2"' in out  # environment wins over the file
    parsed = tomllib.loads(out)  # valid TOML (unset keys are comments)
    assert parsed["checks"]["interval_seconds"] == 42.0
    assert "sasl_password" not in parsed["kafka"]


async def test_migrate_command(empty_database):
    code, out, _ = await run_cli(
        "migrate", env={**base_env(), "E911_POSTGRES__DSN": empty_database}
    )
    assert code == 0
    assert "0001_schema" in out
    code, out, _ = await run_cli(
        "migrate", env={**base_env(), "E911_POSTGRES__DSN": empty_database}
    )
    assert code == 0
    assert "none needed" in out
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(
            migration_files()
        )
    finally:
        await conn.close()


def _processes(name: str, marker: str) -> set[int]:
    """Pids whose executable path ends in ``/name`` (a broker, or a PostgreSQL
    postmaster: its short-lived children rename themselves "postgres: ...") and whose
    environment carries ``marker``: inherited by everything one dev run starts, so
    another test's broker or database (a parallel worker's) never counts."""
    pids = set()
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv0 = (entry / "cmdline").read_bytes().split(b"\x00", 1)[0]
                if b"/" not in argv0 or not argv0.rsplit(b"/", 1)[-1].startswith(name.encode()):
                    continue
                if needle in (entry / "environ").read_bytes().split(b"\x00"):
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


class DevRun:
    """``e911d dev`` as a subprocess, its environment marked so that the broker and
    PostgreSQL processes it starts can be told from any other test's, and the test can
    check it left none of its own behind."""

    def __init__(self, tmpdir: Path | None = None) -> None:
        self.tmpdir = tmpdir
        self.marker = f"E911D_TEST_DEV_RUN={uuid.uuid4().hex}"
        self.proc: asyncio.subprocess.Process
        self.exited_at = 0.0

    def env(self) -> dict[str, str]:
        name, value = self.marker.split("=", 1)
        if self.tmpdir is None:
            return {**base_env(), name: value}
        # Its own temporary folder, and no runtime folder given: dev makes its own.
        env = {k: v for k, v in base_env().items() if k != "XDG_RUNTIME_DIR"}
        return {**env, "TMPDIR": str(self.tmpdir), name: value}

    def children(self) -> set[int]:
        """The brokers and postmasters of this run that are still alive."""
        return _processes("tansu", self.marker) | _processes("postgres", self.marker)

    async def start(self) -> asyncio.StreamReader:
        self.proc = await asyncio.create_subprocess_exec(
            E911D,
            "dev",
            "--http-port",
            "0",
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        return self.proc.stdout

    async def finish(self) -> str:
        """Wait for the exit (0, saying it stopped) and for its children to be gone."""
        out, err = await asyncio.wait_for(self.proc.communicate(), 15)
        self.exited_at = time.monotonic()
        assert self.proc.returncode == 0, err.decode()[-3000:]
        assert "e911d dev: stopped" in out.decode()
        async with asyncio.timeout(10):  # children stopped by dev may take a moment to exit
            while True:
                if not self.children():
                    break
                await asyncio.sleep(0.1)
        return out.decode()

    async def close(self) -> None:
        """Whatever a failed test left running: two Ctrl-Cs (dev then stops its broker
        and PostgreSQL itself), then kill -9 for it and its children if need be."""
        if not hasattr(self, "proc"):
            return
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            await asyncio.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.communicate(), 15)
            await kill(self.proc)
        for pid in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def dev_run() -> AsyncIterator[Callable[[Path | None], DevRun]]:
    """Makes DevRuns, and closes whatever of them a failed test left running."""
    made: list[DevRun] = []

    def make(tmpdir: Path | None = None) -> DevRun:
        made.append(DevRun(tmpdir))
        return made[-1]

    yield make
    for dev in made:
        await dev.close()


@pytest.fixture
def short_tmpdir() -> Iterator[Path]:
    """An empty TMPDIR with a short path: PostgreSQL's socket path must stay under
    107 bytes, which pytest's tmp_path is not."""
    path = Path(tempfile.mkdtemp(prefix="e9t"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_dev_shows_alerts_within_a_minute_and_ctrl_c_leaves_no_process(short_tmpdir, dev_run):
    """`make run` runs `e911d dev` with its defaults (10 s / 5 s); it leaves neither a
    process nor anything in the temporary folder behind."""
    tmpdir = short_tmpdir
    dev = dev_run(tmpdir)
    t0 = time.monotonic()
    stdout = await dev.start()
    lines: list[str] = []
    async with asyncio.timeout(60):
        while True:
            raw = await stdout.readline()
            assert raw, "dev exited early: " + "".join(lines[-20:])
            lines.append(raw.decode())
            if "ALERT RAISED" in lines[-1]:
                break
    first_alert = time.monotonic() - t0
    assert first_alert < 60
    assert any("logs in at" in line for line in lines)
    # The printed addresses are ones a subscriber really reaches: the alert just
    # printed is on the broker's alert topic, the sessions are in the database.
    printed = dict(
        line.split(None, 1) for line in lines if line.startswith(("  broker", "  database"))
    )
    bootstrap, _, alerts_topic = printed["broker"].partition("  (alerts on ")
    async with TopicWatcher(bootstrap, alerts_topic.split(";")[0]) as alerts:
        await alerts.wait_for(lambda got: any(m.type == "e911.alert.raised" for m in got))
    conn = await asyncpg.connect(printed["database"].strip())
    try:
        assert await conn.fetchval("SELECT count(*) FROM sessions") > 0
    finally:
        await conn.close()
    assert list(tmpdir.iterdir())  # the database lives there while it runs
    assert len(dev.children()) == 2  # its broker and its postmaster, found by the marker
    dev.proc.send_signal(signal.SIGINT)  # Ctrl-C
    await dev.finish()
    assert sorted(p.name for p in tmpdir.iterdir()) == []


async def test_dev_second_ctrl_c_exits_at_once_and_leaves_no_process(dev_run):
    """An impatient operator: the second Ctrl-C skips the graceful drain, and the
    embedded broker and PostgreSQL are still stopped."""
    dev = dev_run()
    stdout = await dev.start()
    async with asyncio.timeout(60):
        while b"logs in at" not in await stdout.readline():
            assert dev.proc.returncode is None
    assert len(dev.children()) == 2  # its broker and its postmaster, found by the marker
    t0 = time.monotonic()
    dev.proc.send_signal(signal.SIGINT)
    await asyncio.sleep(0.2)  # two key presses, not one signal delivered twice
    dev.proc.send_signal(signal.SIGINT)
    await dev.finish()
    assert dev.exited_at - t0 < 10


async def test_sigterm_while_waiting_for_the_database_exits_cleanly(unused_port):
    env = {
        **base_env(),
        "E911_POSTGRES__DSN": f"postgresql://postgres@127.0.0.1:{unused_port}/e911d",
        "E911_HTTP__PORT": "0",
        "E911_LOG__FORMAT": "json",
    }
    proc = await asyncio.create_subprocess_exec(
        E911D, "run", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while True:
                line = await proc.stdout.readline()
                assert line, "e911d exited before retrying the database"
                if b'"retrying"' in line and b'"database_connect"' in line:
                    break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 10)
    finally:
        await kill(proc)
    assert proc.returncode == 0
    assert time.monotonic() - t0 < 10
