"""uvicorn's HTTP protocol, writing a response's head and body in one segment.

uvicorn writes the status line and headers as soon as the app sends ``http.response.start``, and
the body on ``http.response.body``: two ``send()`` calls and two TCP segments for every small
JSON answer, so two wake-ups of the client as well. On loopback under load those writes were
about a fifth of the serving thread's samples (py-spy, /predict/fraud at 1,170 req/s); one
write instead of two took ~12% off the thread's CPU per request.
aiohttp coalesces small responses the same way (aio-libs/aiohttp#10991).

The head is held back until the next write on the connection, which is the body for every
response Starlette builds, and joined with it. Nothing waits on the app: if no write follows
within the same event-loop turn (a HEAD answer, a streaming response whose first chunk is not
ready yet, a ``100 Continue``), the head goes out on its own at the next turn; a close, an EOF
from the client (after which the transport closes itself) or ``write_eof`` sends what is held
first. Everything else (flow control, addresses) is the real transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_END = b"\r\n\r\n"
_JOIN_LIMIT = 64 * 1024  # bodies up to this size are joined to the head


class _CoalescingTransport:
    """A transport that holds a response head back to send it with what follows it."""

    __slots__ = ("_transport", "_loop", "_held", "_flush_handle")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_handle: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            if len(data) <= _JOIN_LIMIT:
                self._transport.write(held + bytes(data))
            else:  # a large body: two writes beat copying it
                self._transport.write(held)
                self._transport.write(data)
        elif isinstance(data, bytes) and data.startswith(b"HTTP/") and data.endswith(_HEAD_END):
            self._held = data
            self._flush_handle = self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send what is held, if anything."""
        self._flush_handle = None
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `_CoalescingTransport`; pass as ``uvicorn.run(http=)``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def eof_received(self) -> None:
        # The client is done sending: the transport closes itself after this (as under uvicorn's
        # own protocol), so an answer written in this loop turn goes out first.
        self.transport.flush()  # type: ignore[attr-defined]
        super().eof_received()
