"""``e911d run`` as a child process, for the faults only a process can have: kill -9,
SIGSTOP and SIGCONT. Configured by environment alone (nothing of the test's own
``E911_*`` leaks in); its output goes to a file, so a paused reader never blocks it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import Topics

E911D = str(Path(sys.executable).with_name("e911d"))


def daemon_env(
    bootstrap: str, topics: Topics, dsn: str, group: str, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("E911_")}
    env.update(
        {
            "E911_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "E911_KAFKA__GROUP_ID": group,
            "E911_KAFKA__TOPICS__SESSION_EVENTS": topics.session_events,
            "E911_KAFKA__TOPICS__DIRECTORY_EVENTS": topics.directory_events,
            "E911_KAFKA__TOPICS__ALERTS": topics.alerts,
            "E911_KAFKA__TOPICS__DEAD_LETTER": topics.dead_letter,
            "E911_KAFKA__TOPIC_PARTITIONS": "4",
            "E911_KAFKA__SESSION_TIMEOUT_MS": "1000",
            "E911_KAFKA__HEARTBEAT_INTERVAL_MS": "200",
            "E911_KAFKA__POLL_TIMEOUT_MS": "100",
            "E911_POSTGRES__DSN": dsn,
            "E911_CHECKS__INITIAL_DELAY_SECONDS": "1",
            "E911_CHECKS__INTERVAL_SECONDS": "1",
            "E911_CHECKS__TICK_SECONDS": "0.2",
            "E911_CHECKS__RELAY_INTERVAL_SECONDS": "0.3",
            "E911_HTTP__HOST": "127.0.0.1",
            "E911_HTTP__PORT": "0",
            "E911_LOG__FORMAT": "json",
            **extra,
        }
    )
    return env


@dataclass
class Daemon:
    """One ``e911d run``; :meth:`close` kills whatever a failed test left running."""

    env: dict[str, str]
    log: Path
    proc: asyncio.subprocess.Process | None = None
    _file: Any = field(default=None, repr=False)

    async def start(self) -> Daemon:
        self._file = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            E911D, "run", env=self.env, stdout=self._file, stderr=self._file
        )
        return self

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None and self.proc.returncode is None
        self.proc.send_signal(sig)

    async def wait(self, within: float = 20.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), within)

    def logged(self, event: str) -> bool:
        return f'"event": "{event}"' in self.log.read_text()

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            await self.proc.wait()
        if self._file is not None:
            self._file.close()
            self._file = None
