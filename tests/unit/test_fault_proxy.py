"""The fault trials' TCP proxy (tests/fault_proxy.py) in front of a loopback echo server:
it passes, resets, and black-holes (open, silent, held) as the trials rely on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fault_proxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    upstream = server.sockets[0].getsockname()[1]
    fp = FaultProxy(upstream).start()
    try:
        yield fp
    finally:
        await asyncio.to_thread(fp.stop)
        server.close()
        await server.wait_closed()


async def _roundtrip(port: int, payload: bytes) -> tuple[asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    return writer, await asyncio.wait_for(reader.readexactly(len(payload)), 2)


async def test_pass_carries_bytes_both_ways(proxy: FaultProxy) -> None:
    writer, echoed = await _roundtrip(proxy.port, b"hello")
    assert echoed == b"hello"
    writer.close()


async def test_reset_breaks_open_and_new_connections(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"x")
    assert await asyncio.wait_for(reader.readexactly(1), 2) == b"x"
    await asyncio.to_thread(proxy.set_mode, "reset")
    with pytest.raises(ConnectionResetError):
        writer.write(b"y")
        await writer.drain()
        await asyncio.wait_for(reader.read(1), 2)
        raise AssertionError("read after a reset")  # pragma: no cover
    writers = [writer]
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        # Reset as soon as accepted: the connect itself may already see it.
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        writers.append(writer2)
        writer2.write(b"z")
        await asyncio.wait_for(reader2.readexactly(1), 2)
    for w in writers:
        w.close()


async def test_blackhole_is_silent_open_and_heals_with_nothing_lost(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    await asyncio.to_thread(proxy.set_mode, "blackhole")
    writer.write(b"held")
    await writer.drain()
    # A new connection is accepted too (no refusal), and equally silent.
    reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer2.write(b"new")
    await writer2.drain()
    for r in (reader, reader2):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(r.read(1), 0.5)
    assert not reader.at_eof() and not reader2.at_eof()
    await asyncio.to_thread(proxy.set_mode, "pass")
    assert await asyncio.wait_for(reader.readexactly(4), 2) == b"held"
    assert await asyncio.wait_for(reader2.readexactly(3), 2) == b"new"
    writer.close()
    writer2.close()


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        FaultProxy(1).set_mode("drop")  # type: ignore[arg-type]
