"""Loopback ports that stay the test's own while the suite runs in parallel workers.

A port found free and released at once (bind to 0, close) can be taken by anyone
before it is used: another worker's server asking for a free port, or any outgoing
connection's local port. :func:`held_port` keeps it bound, not listening, until the
block ends:

- nobody listens on it, so a connection to it is refused (a broker or database that
  is down);
- the kernel gives it to no one else: a bind to port 0 and an outgoing connection's
  local port both skip a port that is bound;
- a server told to listen on it still can, while it is held: the holder and the
  server both set SO_REUSEADDR (asyncio, PostgreSQL, Tansu and Prometheus do), and
  Linux lets a socket bind beside one that is bound with it but not listening.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from e911d.daemon.commands.embedded import EmbeddedBroker


@contextlib.contextmanager
def held_port() -> Iterator[int]:
    """A loopback port bound to nobody but this block (see the module's text)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        yield port


def start_broker(advertised: str | None = None, options: tuple[str, ...] = ()) -> EmbeddedBroker:
    """An embedded broker on a port held until it listens (EmbeddedBroker's own choice
    of port is released before the broker binds it)."""
    with held_port() as port:
        log = os.environ.get("E911D_TEST_BROKER_LOG")
        return EmbeddedBroker(
            port=port,
            advertised=advertised,
            options=options,
            log=Path(log) if log else None,
            env={"RUST_LOG": os.environ.get("E911D_TEST_BROKER_RUST_LOG", "debug")} if log else {},
        ).start()
