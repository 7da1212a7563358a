"""The response-coalescing transport under uvicorn's HTTP protocol (mlobs.api.http)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mlobs.api.http import _CoalescingTransport

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    """Stands in for the socket transport: records what reaches the wire."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write_eof(self) -> None:
        self.writes.append(b"<eof>")

    def abort(self) -> None:
        self.writes.append(b"<abort>")
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1234)}.get(name, default)


@pytest.fixture
def wire() -> RecordingTransport:
    return RecordingTransport()


async def test_a_head_and_its_body_reach_the_wire_in_one_write(wire: RecordingTransport) -> None:
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(HEAD)
    assert wire.writes == []
    t.write(b"{}")
    assert wire.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the fallback flush has nothing left to send
    assert wire.writes == [HEAD + b"{}"]


async def test_a_head_alone_goes_out_at_the_next_loop_turn(wire: RecordingTransport) -> None:
    """A streaming response whose first chunk is not ready: the head is not held for it."""
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(HEAD)
    await asyncio.sleep(0)
    assert wire.writes == [HEAD]
    t.write(b"chunk")
    assert wire.writes == [HEAD, b"chunk"]


async def test_close_sends_the_held_head_first(wire: RecordingTransport) -> None:
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
    t.close()
    assert wire.writes == [b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"]
    assert wire.closed
    await asyncio.sleep(0)  # and the fallback flush does not write after the close
    assert len(wire.writes) == 1


async def test_a_held_head_is_dropped_when_the_connection_is_gone(
    wire: RecordingTransport,
) -> None:
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(HEAD)
    wire.closed = True  # the peer went away before the next loop turn
    await asyncio.sleep(0)
    assert wire.writes == []


async def test_writes_that_are_not_a_head_pass_straight_through(wire: RecordingTransport) -> None:
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    for data in (b"5\r\nhello\r\n", b"0\r\n\r\n", bytearray(b"HTTP/1.1 200 OK\r\n\r\n")):
        t.write(data)
    assert wire.writes == [b"5\r\nhello\r\n", b"0\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"]


async def test_everything_else_is_the_real_transports(wire: RecordingTransport) -> None:
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert t.get_extra_info("peername") == ("127.0.0.1", 1234)
    assert t.is_closing() is False


async def test_write_eof_sends_the_held_head_first(wire: RecordingTransport) -> None:
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(HEAD)
    t.write_eof()
    assert wire.writes == [HEAD, b"<eof>"]


async def test_writelines_joins_with_the_held_head(wire: RecordingTransport) -> None:
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(HEAD)
    t.writelines([b"{", b"}"])
    assert wire.writes == [HEAD + b"{}"]


async def test_abort_discards_what_is_held(wire: RecordingTransport) -> None:
    """As the real transport's abort discards its buffer."""
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(HEAD)
    t.abort()
    await asyncio.sleep(0)
    assert wire.writes == [b"<abort>"]


async def test_a_large_body_follows_its_head_without_a_copy(wire: RecordingTransport) -> None:
    t = _CoalescingTransport(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    body = b"x" * (1 << 20)
    t.write(HEAD)
    t.write(body)
    assert wire.writes == [HEAD, body]
