"""A TCP proxy for fault trials: passes, resets or black-holes the connections to one
upstream (PostgreSQL, the broker), switched at run time.

- ``pass``: bytes flow both ways, as if the proxy were not there.
- ``reset``: every open connection is reset (RST, not FIN) and every new one is
  accepted and reset at once: a server whose host went away and said so.
- ``blackhole``: connections stay open and nothing answers. New ones are accepted
  (the handshake is the proxy's kernel's) and read from, but nothing reaches the
  upstream and nothing comes back; open ones stop flowing both ways. Nothing is
  closed: a dropped security-group rule or a half-dead NAT, where only timeouts notice.
  What was sent meanwhile is held, not dropped, and flows once the mode is ``pass``
  again, as TCP's retransmissions would deliver it after a short outage.

TCP keepalives cannot see through it (the proxy's kernel answers them), which is the
point: only the daemon's own timeouts notice. A thread of its own with its own loop,
so a test's event loop and a daemon in a subprocess reach it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import Literal, TypeVar

Mode = Literal["pass", "reset", "blackhole"]
MODES: tuple[Mode, ...] = ("pass", "reset", "blackhole")
T = TypeVar("T")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST: SO_LINGER on, with a zero timeout."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError, RuntimeError):
        writer.transport.abort()
        writer.close()


class _Link:
    """One client connection and, once the mode lets it through, its upstream one."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None

    def reset(self) -> None:
        _reset(self.client)
        if self.upstream is not None:
            _reset(self.upstream)

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    writer.close()


class FaultProxy:
    """127.0.0.1:``port`` in front of ``upstream_host``:``upstream_port``, or of the unix
    socket ``upstream_path`` (the embedded PostgreSQL listens on one only)."""

    def __init__(
        self,
        upstream_port: int = 0,
        upstream_host: str = "127.0.0.1",
        port: int = 0,
        *,
        upstream_path: str | None = None,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.upstream_path = upstream_path
        self.port = port
        self.mode: Mode = "pass"
        self.accepted = 0  # connections accepted so far, whatever the mode
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._serve()).result(10)
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._call(self._close()).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_mode(self, mode: Mode) -> None:
        """Switch, and return once the switch has taken effect on every connection."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        self._call(self._switch(mode)).result(10)

    def connections(self) -> int:
        """Client connections open through the proxy now."""
        return self._call(self._count()).result(10)

    def _call(self, coro: Awaitable[T]) -> Future[T]:
        if self._loop is None:
            raise RuntimeError("the proxy is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    async def _count(self) -> int:
        return len(self._links)

    async def _serve(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: Mode) -> None:
        assert self._flowing is not None
        self.mode = mode
        if mode == "pass":
            self._flowing.set()
            return
        self._flowing.clear()
        if mode == "reset":
            for link in list(self._links):
                link.reset()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.reset()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.get_running_loop().create_task(self._relay(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        link = _Link(writer)
        self._links.add(link)
        try:
            if self.mode == "reset":
                link.reset()
                return
            # Black-holed: accepted, read from (held), never connected upstream, until
            # the mode is pass again.
            pending = asyncio.ensure_future(reader.read(65_536))
            try:
                await self._flowing.wait()
            except asyncio.CancelledError:
                pending.cancel()
                raise
            try:
                if self.upstream_path is not None:
                    up_reader, up_writer = await asyncio.open_unix_connection(self.upstream_path)
                else:
                    up_reader, up_writer = await asyncio.open_connection(
                        self.upstream_host, self.upstream_port
                    )
            except OSError:
                pending.cancel()
                link.reset()
                return
            link.upstream = up_writer
            await asyncio.gather(
                self._pump(reader, up_writer, pending),
                self._pump(up_reader, writer, None),
            )
        finally:
            self._links.discard(link)
            link.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first: asyncio.Future[bytes] | None,
    ) -> None:
        assert self._flowing is not None
        try:
            data = await first if first is not None else await reader.read(65_536)
            while data:
                # Held, not dropped, while black-holed: flows again on pass.
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
                data = await reader.read(65_536)
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()
        except (OSError, RuntimeError):
            _reset(writer)
