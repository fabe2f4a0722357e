"""``make image-check``: run the built image the way a platform would, and stop it.

The embedded broker and PostgreSQL (the same ones the tests use) run on the host; the
container joins the host network, with a read-only root filesystem, as a non-root user
with no capabilities. PostgreSQL only listens on a Unix socket, so the socket file is
mounted into the container. The check passes when ``/readyz`` answers 200, the image's
own HEALTHCHECK passes, and SIGTERM ends the container with exit code 0 within 10 s.
Everything it started is removed, whatever the outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from e911d import __version__
from e911d.daemon.commands.embedded import EmbeddedBroker, EmbeddedPostgres, free_port

SOCKET_DIR = "/run/e911d-pg"  # where the container sees PostgreSQL's socket


class CheckFailed(Exception):
    """The image did not behave as a platform expects."""


def podman(*args: str, timeout: float = 60, check: bool = True) -> str:
    done = subprocess.run(  # noqa: S603  fixed program, arguments built here
        ["podman", *args],  # noqa: S607  podman is on PATH by the make target
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise CheckFailed(f"podman {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  loopback http
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_ready(name: str, url: str, timeout: float) -> float:
    """Seconds until ``url`` answers 200; fails at once if the container exits."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if http_status(url) == 200:
            return time.monotonic() - start
        state = podman("inspect", "--format", "{{.State.Status}}", name)
        if state not in ("created", "running"):
            raise CheckFailed(f"the container stopped before it was ready (state {state})")
        time.sleep(0.2)
    raise CheckFailed(f"{url} did not answer 200 within {timeout:g}s")


def logged_events(name: str) -> list[str]:
    """The ``event`` of every JSON log line the container wrote, in order."""
    done = subprocess.run(  # noqa: S603
        ["podman", "logs", name],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    events: list[str] = []
    for line in (done.stdout + done.stderr).splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "event" in record:
                events.append(str(record["event"]))
    return events


def socket_path(dsn: str) -> Path:
    host = parse_qs(urlsplit(dsn).query)["host"][0]
    return Path(host) / ".s.PGSQL.5432"


def check(image: str, ready_timeout: float, stop_limit: float) -> str:
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", image))
    labelled = labels.get("org.opencontainers.image.version")
    if labelled != __version__:
        raise CheckFailed(f"image version label is {labelled!r}, e911d is {__version__}")
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image))
    name = f"e911d-image-check-{free_port()}"
    port = free_port()
    broker = EmbeddedBroker()
    pg = EmbeddedPostgres()
    try:
        broker.start()
        pg.start()
        podman(
            "run", "--detach", "--name", name,
            "--network", "host", "--read-only", "--user", "10001:10001",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--volume", f"{socket_path(pg.dsn)}:{SOCKET_DIR}/.s.PGSQL.5432",
            "--env", f"E911_KAFKA__BOOTSTRAP_SERVERS={broker.bootstrap_servers}",
            "--env", f"E911_POSTGRES__DSN=postgresql://postgres@/postgres?host={SOCKET_DIR}",
            "--env", "E911_HTTP__HOST=127.0.0.1",
            "--env", f"E911_HTTP__PORT={port}",
            image,
        )  # fmt: skip
        ready = wait_ready(name, f"http://127.0.0.1:{port}/readyz", ready_timeout)
        # The image's HEALTHCHECK, run by podman inside the container.
        podman("healthcheck", "run", name)
        began = time.monotonic()
        podman("kill", "--signal", "TERM", name)
        code = podman("wait", name, timeout=stop_limit + 20)
        took = time.monotonic() - began
        if code != "0":
            raise CheckFailed(f"exit code {code} after SIGTERM (want 0)")
        if took > stop_limit:
            raise CheckFailed(f"took {took:.1f}s to stop after SIGTERM (limit {stop_limit:g}s)")
        events = logged_events(name)
        if "daemon_started" not in events or events[-1] != "daemon_stopped":
            raise CheckFailed(f"the JSON log does not show a clean start and stop: {events[-5:]}")
        return (
            f"image-check ok: {image} ({size / 1e6:.0f} MB), ready in {ready:.1f}s, "
            f"SIGTERM -> exit 0 in {took:.1f}s"
        )
    except CheckFailed:
        logs = podman("logs", "--tail", "40", name, check=False)
        print(logs, file=sys.stderr)
        raise
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
        broker.stop()
        pg.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("image")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--stop-limit", type=float, default=10.0)
    args = parser.parse_args(argv)
    try:
        print(check(args.image, args.ready_timeout, args.stop_limit))
    except (CheckFailed, subprocess.TimeoutExpired) as exc:
        print(f"image-check FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
