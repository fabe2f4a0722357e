"""The operations endpoint: /metrics, /healthz, /readyz on one small asyncio server.

A full web framework would be a dependency for three GET routes; this server reads one
bounded request line, answers, and closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = structlog.get_logger("e911d.http")

ReadyProbe = Callable[[], Awaitable[tuple[bool, dict[str, bool]]]]


@dataclass(frozen=True, slots=True)
class HttpDeps:
    registry: CollectorRegistry
    ready: ReadyProbe
    alive: Callable[[], bool]


class HttpServer:
    """``async with`` listens; leaving the block stops listening."""

    def __init__(self, deps: HttpDeps, host: str, port: int) -> None:
        self._deps = deps
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("http_listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=5)
                # Drain headers (bounded) so clients do not see a reset.
                for _ in range(100):
                    header = await asyncio.wait_for(reader.readline(), timeout=5)
                    if header in (b"\r\n", b"\n", b""):
                        break
            except (TimeoutError, ValueError, ConnectionError):
                return
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                await self._respond(writer, 400, b"bad request\n")
                return
            method, path = parts[0], parts[1].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                await self._respond(writer, 405, b"method not allowed\n")
                return
            if path == "/metrics":
                body = generate_latest(self._deps.registry)
                await self._respond(writer, 200, body, CONTENT_TYPE_LATEST, head=method == "HEAD")
            elif path == "/healthz":
                ok = self._deps.alive()
                await self._respond(writer, 200 if ok else 503, b"ok\n" if ok else b"dead\n")
            elif path == "/readyz":
                ready, checks = await self._deps.ready()
                text = "".join(f"{k} {'ok' if v else 'fail'}\n" for k, v in checks.items())
                await self._respond(writer, 200 if ready else 503, text.encode())
            else:
                await self._respond(writer, 404, b"not found\n")
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        head: bool = False,
    ) -> None:
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            503: "Service Unavailable",
        }[status]
        headers = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(headers.encode("latin-1") + (b"" if head else body))
        await writer.drain()
