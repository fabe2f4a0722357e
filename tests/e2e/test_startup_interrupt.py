"""A Ctrl-C while the daemon waits for its broker at start-up: a clean exit, nothing
left open (each component closes itself, including one whose start was cut short)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.cli import kill

E911D = str(Path(sys.executable).with_name("e911d"))

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_stop_while_the_producer_waits_for_the_broker_closes_it(database, sig, unused_port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("E911_")}
    env.update(
        {
            "E911_POSTGRES__DSN": database,
            "E911_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{unused_port}",  # nobody listens
            "E911_KAFKA__CREATE_TOPICS": "false",
            "E911_HTTP__HOST": "127.0.0.1",
            "E911_HTTP__PORT": "0",
            "E911_LOG__FORMAT": "json",
            "PYTHONWARNINGS": "always::ResourceWarning",  # make an unclosed client speak
        }
    )
    proc = await asyncio.create_subprocess_exec(
        E911D, "run", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while True:
                line = await proc.stdout.readline()
                assert line, b"e911d exited before retrying the broker: " + b"".join(seen[-10:])
                seen.append(line)
                if b'"retrying"' in line and b'"kafka_producer_start"' in line:
                    break
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        await kill(proc)
    text = (b"".join(seen) + out).decode()
    assert proc.returncode == 0, text[-3000:]
    assert time.monotonic() - t0 < 10
    assert "Unclosed" not in text, text[-3000:]
    assert '"during": "startup"' in text
