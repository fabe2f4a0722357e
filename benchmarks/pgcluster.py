"""The benchmark's PostgreSQL: the embedded one (pgserver), or a throw-away cluster of
another installation's binaries with ``pg_stat_statements`` preloaded.

Why two: pgserver's build (PostgreSQL 16.2) ships no contrib modules: there is no
``pg_stat_statements.so`` in its ``lib/postgresql`` nor a control file in
``share/postgresql/extension``, so ``shared_preload_libraries`` has nothing to load,
and a module built for another major version is refused at start
(``FATAL: incompatible library ... version mismatch``: the magic block). With
``--postgres-bin /usr/lib/postgresql/15/bin`` (Debian's ``postgresql-15`` with its
contrib) the same run gets the statements' own account next to the /proc one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e911d.daemon.commands.embedded import EmbeddedPostgres

# initdb and postgres refuse to run as root; pgserver runs them as this user too.
_USER = "pgserver"


@dataclass
class Cluster:
    """A started cluster: its admin DSN (database ``postgres``), postmaster pid, name."""

    dsn: str
    postmaster: int
    name: str
    _stop: Any = field(repr=False, default=None)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


def embedded() -> Cluster:
    pg = EmbeddedPostgres().start()
    assert pg.directory is not None
    pid = int((pg.directory / "postmaster.pid").read_text().split()[0])
    return Cluster(pg.dsn, pid, "PostgreSQL 16.2 (pgserver)", pg.stop)


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", _USER, "--", *argv] if os.geteuid() == 0 else argv


def with_statements(bin_dir: Path) -> Cluster:
    """initdb + start a cluster of ``bin_dir``'s binaries, listening on a socket only,
    with pg_stat_statements preloaded (every statement, utility ones included)."""
    root = Path(tempfile.mkdtemp(prefix="e911-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        uid = _owner_uid()
        os.chown(root, uid, -1)
        os.chown(sock, uid, -1)
    subprocess.run(
        _as_owner([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = (
        f"-h '' -k {sock} -c shared_preload_libraries=pg_stat_statements "
        "-c pg_stat_statements.track=all -c pg_stat_statements.max=10000 "
        "-c max_connections=300"
    )
    ctl = str(bin_dir / "pg_ctl")
    subprocess.run(
        _as_owner([ctl, "-w", "-D", str(data), "-o", options, "-l", str(root / "log"), "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    version = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()

    def stop() -> None:
        subprocess.run(
            _as_owner([ctl, "-w", "-D", str(data), "-m", "fast", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)

    return Cluster(
        f"postgresql://postgres@/postgres?host={sock}",
        pid,
        f"{version} ({bin_dir}, pg_stat_statements)",
        stop,
    )


def _owner_uid() -> int:
    from pgserver.utils import ensure_user_exists  # creates it with useradd if missing

    entry = ensure_user_exists(_USER)
    assert entry is not None
    return int(entry.pw_uid)
