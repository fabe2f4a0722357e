"""The operations endpoint: /metrics, /healthz, /readyz on one small asyncio server.

A full web framework would be a dependency for three GET routes; this server reads one
bounded request line, answers, and closes.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

log = structlog.get_logger(__name__)

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
            headers: dict[str, str] = {}
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=5)
                # Read the headers (bounded): /metrics negotiates on two of them.
                for _ in range(100):
                    header = await asyncio.wait_for(reader.readline(), timeout=5)
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
            except (TimeoutError, ValueError, ConnectionError):
                return
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                await self._respond(writer, 400, b"bad request\n")
                return
            method, (path, _, query) = parts[0], parts[1].partition("?")
            if method not in ("GET", "HEAD"):
                await self._respond(writer, 405, b"method not allowed\n")
                return
            if path == "/metrics":
                await self._metrics(writer, headers, query, head=method == "HEAD")
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

    async def _metrics(
        self, writer: asyncio.StreamWriter, headers: dict[str, str], query: str, *, head: bool
    ) -> None:
        """What prometheus_client's own exposition does: the format the Accept header
        asks for (OpenMetrics or the classic text), ``name[]`` to restrict the
        families, and gzip when the client accepts it."""
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        registry: CollectorRegistry = self._deps.registry
        names = parse_qs(query).get("name[]")
        if names:
            registry = registry.restricted_registry(names)  # type: ignore[assignment]
        body = encoder(registry)
        extra: list[tuple[str, str]] = []
        if gzip_accepted(headers.get("accept-encoding", "")):
            body = gzip.compress(body)
            extra.append(("Content-Encoding", "gzip"))
        await self._respond(writer, 200, body, content_type, head=head, extra=extra)

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        head: bool = False,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            503: "Service Unavailable",
        }[status]
        more = "".join(f"{k}: {v}\r\n" for k, v in extra or ())
        headers = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{more}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(headers.encode("latin-1") + (b"" if head else body))
        await writer.drain()
