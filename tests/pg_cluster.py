"""Debian's PostgreSQL as a managed service runs it: a primary and a streaming replica.

The replica is a ``pg_basebackup -R`` copy of the primary that streams its WAL
asynchronously (hot standby: it answers reads, refuses writes). The fault trials kill
the primary (``pg_ctl stop -m immediate``: no shutdown checkpoint, as when its host
dies) and promote the replica (``pg_ctl promote``), as a managed service's failover
does; the daemon, given both hosts with ``target_session_attrs=read-write``, must
follow alone.

Each server listens on TCP on 127.0.0.1 (what a multi-host DSN names) and on a unix
socket in its own folder (for ``pg_isready``). The folders live under /tmp, not under
pytest's tmp_path (see tests/faults/test_outage.py), and as root the servers run as
the ``postgres`` user, which PostgreSQL requires (tests/tls_postgres.py does the same).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tests.ports import held_port
from tests.tls_postgres import server_bindir


def _run_as() -> tuple[str | None, int | None, int | None]:
    if os.geteuid() != 0:
        return None, None, None
    entry = pwd.getpwnam("postgres")
    return "postgres", entry.pw_uid, entry.pw_gid


@dataclass
class PgNode:
    """One server: its data folder, its TCP port, its postmaster."""

    name: str
    folder: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: BinaryIO | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, bindir: Path, user: str | None, timeout: float = 30.0) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.folder),
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "fsync": "off",  # a test's speed; synchronous_commit stays on, as in production
            "max_connections": "60",
        }
        args = [str(bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        self._log = (self.folder / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=self._log, user=user, start_new_session=True
        )
        ready = [str(bindir / "pg_isready"), "-q", "-h", str(self.folder)]
        ready += ["-p", str(self.port), "-U", "postgres"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            if subprocess.run(ready, check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not accept connections within {timeout}s")

    def log_tail(self) -> str:
        return (self.folder / "postgres.log").read_text(errors="replace")[-3000:]

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode`` (immediate: no checkpoint, as when the host dies)."""
        if self.process is not None and self.process.poll() is None:
            sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
            # pg_ctl stop sends exactly this signal to the postmaster; sent directly it
            # needs no second process as the postgres user.
            self.process.send_signal(sig[mode])
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class ReplicatedPostgres:
    """A primary and its asynchronous streaming replica; :meth:`stop` removes both."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="e911d-pgrepl-")))
    primary: PgNode = field(init=False)
    replica: PgNode = field(init=False)

    def __post_init__(self) -> None:
        self.primary = PgNode("primary", self.folder / "primary")
        self.replica = PgNode("replica", self.folder / "replica")

    def start(self, relay: Callable[[int], int] | None = None) -> ReplicatedPostgres:
        """``relay``, given the primary's port, returns the port the replica streams
        from instead (a FaultProxy's, so that a trial can cut replication)."""
        bindir = server_bindir()
        user, uid, gid = _run_as()
        for node in (self.primary, self.replica):
            node.folder.mkdir(parents=True)
        if uid is not None and gid is not None:
            for path in (self.folder, self.primary.folder, self.replica.folder):
                os.chown(path, uid, gid)
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.primary.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
            ],
            check=True,
            capture_output=True,
            user=user,
        )
        (self.primary.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n",
            encoding="utf-8",
        )
        with held_port() as p1, held_port() as p2:  # held until each server listens
            self.primary.port, self.replica.port = p1, p2
            self.primary.start(bindir, user)
            # -R writes standby.signal and primary_conninfo; -X stream copies the WAL
            # written during the copy. The replica then streams asynchronously.
            source = relay(p1) if relay is not None else p1
            subprocess.run(
                [
                    str(bindir / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(source),
                    "-U",
                    "postgres",
                    "-D",
                    str(self.replica.data),
                    "-R",
                    "-X",
                    "stream",
                ],
                check=True,
                capture_output=True,
                user=user,
            )
            self.replica.start(bindir, user)
        return self

    def dsn(self, database: str, *, replica_first: bool = False) -> str:
        """Both hosts, libpq's multi-host syntax: whichever accepts writes is used."""
        hosts = [self.primary.address, self.replica.address]
        if replica_first:
            hosts.reverse()
        return f"postgresql://postgres@{','.join(hosts)}/{database}?target_session_attrs=read-write"

    def wait_replicated(self, timeout: float = 30.0) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        bindir = server_bindir()
        user, _, _ = _run_as()

        def ask(node: PgNode, sql: str) -> str:
            out = subprocess.run(
                [
                    str(bindir / "psql"),
                    "-h",
                    str(node.folder),
                    "-p",
                    str(node.port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-At",
                    "-c",
                    sql,
                ],
                check=True,
                capture_output=True,
                user=user,
            )
            return out.stdout.decode().strip()

        written = ask(self.primary, "SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            caught_up = ask(self.replica, f"SELECT pg_last_wal_replay_lsn() >= '{written}'")
            if caught_up == "t":
                return
            time.sleep(0.05)
        raise RuntimeError(f"the replica did not replay up to {written} within {timeout}s")

    def kill_primary(self) -> None:
        self.primary.stop("immediate")

    def promote(self, timeout: float = 30.0) -> None:
        """``pg_ctl promote -w``: returns once the replica accepts writes."""
        user, _, _ = _run_as()
        subprocess.run(
            [
                str(server_bindir() / "pg_ctl"),
                "promote",
                "-w",
                "-t",
                str(int(timeout)),
                "-D",
                str(self.replica.data),
            ],
            check=True,
            capture_output=True,
            user=user,
        )

    def stop(self) -> None:
        for node in (self.replica, self.primary):
            node.stop("fast")
        shutil.rmtree(self.folder, ignore_errors=True)
