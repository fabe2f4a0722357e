"""A broker that restarts with its log: Tansu's ``s3://`` storage engine against a local
S3 server (moto's server mode, from the test extras), for the fault trials.

The embedded broker keeps its log in memory, so a restarted one comes back empty,
which no real Kafka does. With ``--storage-engine s3://BUCKET/`` Tansu keeps topics,
records and committed offsets as objects in the bucket (it reads the ``AWS_*``
variables, like any client of the Rust ``object_store`` crate); the S3 server is a
process of its own, so a broker killed with SIGKILL and started again on the same port
finds its log where it left it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from e911d.daemon.commands.embedded import EmbeddedBroker, EmbeddedError
from tests.ports import held_port

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))


def _wait_listening(port: int, proc: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedError(f"moto_server exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"moto_server did not listen on port {port} within {within}s")


@dataclass
class S3Server:
    """moto's S3 server on a loopback port; its objects live as long as the process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_bucket(self, name: str) -> None:
        # moto checks no signature: a plain PUT makes the bucket.
        url = f"{self.endpoint}/{name}"
        request = urllib.request.Request(url, method="PUT")  # noqa: S310  http on loopback
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.status == 200, response.status

    def objects(self, bucket: str) -> int:
        """How many objects the bucket holds (the broker's log is there, not in memory)."""
        url = f"{self.endpoint}/{bucket}?list-type=2"
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310  http on loopback
            return r.read().count(b"<Key>")

    def broker_env(self) -> dict[str, str]:
        """What Tansu's S3 engine reads: the endpoint, plain HTTP, any credentials."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "e911d-test",
            "AWS_SECRET_ACCESS_KEY": "e911d-test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@contextlib.contextmanager
def s3_server(log: Path | None = None) -> Iterator[S3Server]:
    with held_port() as port:
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(
            [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        if not isinstance(out, int):
            out.close()
        try:
            _wait_listening(port, process, 30)
            yield S3Server(port, process)
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def s3_broker(server: S3Server, bucket: str, port: int, log: Path | None = None) -> EmbeddedBroker:
    """A broker (not started) whose log is the bucket: ``start`` it, ``kill`` it,
    ``start`` it again on the same ``port`` (hold the port for the whole trial)."""
    server.create_bucket(bucket)
    return EmbeddedBroker(
        port=port,
        options=("--storage-engine", f"s3://{bucket}/"),
        env=server.broker_env(),
        log=log,
    )
