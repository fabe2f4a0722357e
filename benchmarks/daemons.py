"""``e911d run`` subprocesses as ``benchmarks.million`` drives them: one or several
instances of one design in one consumer group, read through /metrics and /proc.

Kept apart from the measurement so that each file says one thing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks import workload as w
from e911d.daemon.commands.embedded import free_port

REPO = Path(__file__).resolve().parents[1]


def wait(
    condition: Callable[[], bool],
    within: float,
    what: str,
    step: float = 0.25,
    alive: Callable[[], bool] = lambda: True,
) -> float:
    """Poll until true; returns when (monotonic). Raises with ``what`` on timeout."""
    deadline = time.monotonic() + within
    while not condition():
        if not alive():
            raise RuntimeError(f"{what}: the daemon exited")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:.0f} s")
        time.sleep(step)
    return time.monotonic()


@contextlib.contextmanager
def baseline_tree(ref: str) -> Iterator[Path]:
    """``ref`` checked out in a temporary git worktree, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="e911-baseline-"))
    git = ["git", "-C", str(REPO), "worktree"]
    subprocess.run([*git, "add", "--detach", "--force", str(path), ref], check=True)
    try:
        yield path
    finally:
        subprocess.run([*git, "remove", "--force", str(path)], check=False)


def environment(
    bootstrap: str, dsn: str, prefix: str, *, initial_delay: float, interval: float
) -> dict[str, str]:
    """What every instance of one run shares: its topics, group and database."""
    return {
        "E911_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "E911_KAFKA__GROUP_ID": prefix,
        "E911_KAFKA__TOPICS__SESSION_EVENTS": f"{prefix}.sessions",
        "E911_KAFKA__TOPICS__DIRECTORY_EVENTS": f"{prefix}.directory",
        "E911_KAFKA__TOPICS__ALERTS": f"{prefix}.alerts",
        "E911_KAFKA__TOPICS__DEAD_LETTER": f"{prefix}.dlq",
        "E911_KAFKA__TOPIC_PARTITIONS": "12",
        "E911_POSTGRES__DSN": dsn,
        "E911_CHECKS__INITIAL_DELAY_SECONDS": str(initial_delay),
        "E911_CHECKS__INTERVAL_SECONDS": str(interval),
        "E911_CHECKS__TICK_SECONDS": "0.2",
        "E911_HTTP__HOST": "127.0.0.1",
        "E911_LOG__LEVEL": "warning",
        "E911_LOG__FORMAT": "json",
    }


class Daemon:
    """One ``e911d run`` subprocess: its own HTTP port and static group member id."""

    def __init__(self, env: dict[str, str], pythonpath: Path, member: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            **env,
            "E911_HTTP__PORT": str(self.port),
            "E911_KAFKA__GROUP_INSTANCE_ID": member,
            "PYTHONPATH": str(pythonpath),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        code = "import sys; from e911d.daemon.commands.cli import main; sys.exit(main(['run']))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], env=self.env, stdout=subprocess.DEVNULL
        )
        return time.monotonic()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def answers(self) -> bool:
        try:
            w.scrape(self.port)
        except OSError:
            return False
        return True

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Group:
    """N instances of one design in one consumer group; figures are summed over them."""

    def __init__(self, env: dict[str, str], pythonpath: Path, instances: int, prefix: str) -> None:
        self.members = [Daemon(env, pythonpath, f"{prefix}-{i}") for i in range(instances)]

    def start(self) -> None:
        for d in self.members:
            d.start()

    def alive(self) -> bool:
        return all(d.alive() for d in self.members)

    def ready(self) -> bool:
        return all(w.ready(d.port) for d in self.members)

    def scrape(self) -> list[w.Scrape]:
        return [w.scrape(d.port) for d in self.members]

    def total(self, name: str) -> float:
        return sum(s.get(name) for s in self.scrape())

    def checks(self) -> float:
        return sum(s.checks() for s in self.scrape())

    def stop(self) -> None:
        for d in self.members:
            d.kill(signal.SIGTERM)


def merged(scrapes: list[w.Scrape]) -> w.Scrape:
    """Several instances' scrapes as one: samples summed (counters, histograms, gauges
    that add up such as sessions held), taken at the latest instant."""
    samples: dict[str, float] = {}
    for s in scrapes:
        for k, v in s.samples.items():
            samples[k] = samples.get(k, 0.0) + v
    return w.Scrape(max(s.at for s in scrapes), samples)
