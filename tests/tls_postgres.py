"""A PostgreSQL server with ``ssl=on`` for the TLS tests: TLS-only on 127.0.0.1
(``hostssl`` in pg_hba.conf), with a certificate from the fixture's CA.

The pgserver wheel's build has no OpenSSL (``pg_config --configure`` lacks
``--with-openssl``), so this runs the distribution's PostgreSQL server binaries
(Debian: the ``postgresql`` package, which ``make test`` installs when missing).
PostgreSQL refuses to run as root: under root it runs as the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tests.ports import held_port
from tests.tls_certs import Issued

CERT_ROLE = "e911d_cert"
"""A role that logs in with a client certificate (CN = the role) and nothing else."""


def server_bindir() -> Path:
    """The newest PostgreSQL server installed by the distribution (or on PATH)."""

    def major(p: Path) -> int:
        return int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=major)
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError(
        "the PostgreSQL TLS tests need PostgreSQL server binaries built with OpenSSL: "
        "apt-get install postgresql (make test does this on Debian)"
    )


@dataclass
class TlsPostgres:
    """Started with :meth:`start`, stopped (and its files removed) by :meth:`stop`."""

    certificate: Issued
    client_ca: Path  # signs the client certificates of role CERT_ROLE
    port: int = 0
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="e911d-pgtls-")))
    process: subprocess.Popen[bytes] | None = None
    _log: BinaryIO | None = None

    def _run_as(self) -> tuple[str | None, int | None, int | None]:
        if os.geteuid() != 0:
            return None, None, None
        entry = pwd.getpwnam("postgres")
        return "postgres", entry.pw_uid, entry.pw_gid

    def start(self, timeout: float = 30.0) -> TlsPostgres:
        bindir = server_bindir()
        user, uid, gid = self._run_as()
        data = self.directory / "data"
        cert = self.directory / "server.pem"
        key = self.directory / "server.key"
        shutil.copyfile(self.certificate.cert, cert)
        shutil.copyfile(self.certificate.key, key)
        client_ca = self.directory / "client-ca.pem"
        shutil.copyfile(self.client_ca, client_ca)
        key.chmod(0o600)  # PostgreSQL refuses a key others can read
        if uid is not None and gid is not None:
            for path in (self.directory, cert, key, client_ca):
                os.chown(path, uid, gid)
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N"],
            check=True,
            capture_output=True,
            user=user,
        )
        # TLS only over TCP: a plaintext connection is refused, as by a managed service.
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"hostssl all {CERT_ROLE} 127.0.0.1/32 cert\n"
            "hostssl all all 127.0.0.1/32 trust\n",
            encoding="utf-8",
        )
        with held_port() as port:  # held until the server listens on it
            self.port = self.port or port
            settings = {
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": str(self.directory),
                "ssl": "on",
                "ssl_cert_file": str(cert),
                "ssl_key_file": str(key),
                "ssl_ca_file": str(client_ca),
                "fsync": "off",
                "max_connections": "50",
            }
            args = [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port)]
            for name, value in settings.items():
                args += ["-c", f"{name}={value}"]
            self._log = (self.directory / "postgres.log").open("wb")
            self.process = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                user=user,
                start_new_session=True,
            )
            self._wait_ready(bindir, timeout)
        return self

    def _wait_ready(self, bindir: Path, timeout: float) -> None:
        # Listening is not accepting: "the database system is starting up" comes first.
        ready = [str(bindir / "pg_isready"), "-q", "-h", str(self.directory)]
        ready += ["-p", str(self.port), "-U", "postgres"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.directory / "postgres.log").read_text(errors="replace")
                raise RuntimeError(f"postgres exited: {log[-2000:]}")
            if subprocess.run(ready, check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not accept connections within {timeout}s")

    @property
    def admin_dsn(self) -> str:
        """Over the unix socket (trusted, no TLS): for creating test databases."""
        return f"postgresql://postgres@/postgres?host={self.directory}&port={self.port}"

    def dsn(self, database: str, host: str, query: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@{host}:{self.port}/{database}?{query}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.directory, ignore_errors=True)
