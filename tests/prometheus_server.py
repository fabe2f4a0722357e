"""A real Prometheus (Debian's) for the tests that check rules and dashboard queries
against a live daemon: started on a held port with the given configuration, waited
for until it is ready, and stopped with the test."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.cli import kill
from tests.ports import held_port

PROMETHEUS = "/usr/bin/prometheus"


@dataclass(frozen=True, slots=True)
class Running:
    port: int
    log: Path


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def _ready(proc: asyncio.subprocess.Process, port: int, log: Path) -> None:
    """Until ``/-/ready`` says 200: Prometheus listens before its storage is open, and
    answers every query with 503 until then (seen on a loaded machine)."""
    request = b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    async with asyncio.timeout(60):
        while True:
            assert proc.returncode is None, _tail(log)
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            try:
                writer.write(request)
                status = await reader.readline()
            finally:
                writer.close()
                await writer.wait_closed()
            if status.split(b" ")[1:2] == [b"200"]:
                return
            await asyncio.sleep(0.05)


@asynccontextmanager
async def prometheus_servers(folder: Path) -> AsyncIterator[Any]:
    """Yields ``start(config)``: each call writes ``config`` (a prometheus.yml as
    data) into ``folder``, starts a server on it and returns once it is ready. Every
    server started is stopped when the block ends, however it ends."""
    started: list[asyncio.subprocess.Process] = []

    async def start(config: dict[str, Any]) -> Running:
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = folder / "prometheus.log"
        with held_port() as port:  # held until Prometheus listens on it
            with log.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    PROMETHEUS,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(proc)
            await _ready(proc, port, log)
        return Running(port, log)

    try:
        yield start
    finally:
        for proc in started:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    await kill(proc)
