"""A real uvicorn server with the coalescing protocol (as `mlobs serve` runs it), on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from helpers import WAIT_SECONDS, eventually, free_port
from mlobs.api.http import CoalescingHttpToolsProtocol

FIRST_CHUNK_DELAY = 1.0
# Set by the client once it has the head of /stream: the body waits for it (or WAIT_SECONDS,
# were the head held back for the body), and notes which came first in STREAM.
HEAD_SEEN = threading.Event()
STREAM: dict[str, bool] = {}


async def small(request: Request) -> Response:
    return JSONResponse({"n": int(request.query_params.get("n", 0))})


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def stream(_: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        STREAM["head_first"] = await asyncio.to_thread(HEAD_SEEN.wait, WAIT_SECONDS)
        await asyncio.sleep(FIRST_CHUNK_DELAY)
        yield b"first,"
        yield b"second"

    return StreamingResponse(chunks(), media_type="text/plain")


async def empty(_: Request) -> Response:
    return Response(status_code=204)


APP = Starlette(
    routes=[
        Route("/small", small),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/empty", empty, methods=["GET", "DELETE"]),
    ]
)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=port, http=CoalescingHttpToolsProtocol, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "server did not start"
        return bool(server.started)

    eventually(started, interval=0.02, message="server did not start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(WAIT_SECONDS)


def test_keep_alive_requests_get_whole_answers(base: str) -> None:
    with httpx.Client(base_url=base) as client:
        for n in range(50):
            r = client.get("/small", params={"n": n})
            assert r.status_code == 200 and r.json() == {"n": n}
        big = bytes(range(256)) * 4096  # 1 MiB: a body past the socket buffers
        r = client.post("/echo", content=big)
        assert r.status_code == 200 and r.content == big


def _data_segments_in(s: socket.socket) -> int:
    """Linux's count of data segments this socket received (``tcpi_data_segs_in`` of
    ``struct tcp_info``, at byte 152 since Linux 4.6)."""
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
    if len(info) < 156:
        pytest.skip("this kernel's tcp_info has no data_segs_in")
    return int(struct.unpack_from("I", info, 152)[0])


def test_a_small_answer_is_one_tcp_segment(base: str) -> None:
    """Head and body leave in one write, so the client receives one data segment per answer
    (uvicorn's own protocol sends two: the head, then the body)."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        before = _data_segments_in(s)
        for n in range(20):
            s.sendall(f"GET /small?n={n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while not data.endswith(f'{{"n":{n}}}'.encode()):
                chunk = s.recv(65536)
                assert chunk
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")
        assert _data_segments_in(s) - before == 20


def test_a_streaming_head_is_not_held_for_its_first_chunk(base: str) -> None:
    """The first chunk is produced only once the client has the head: a head held back for
    it would reach the client only after the body gave up waiting (``head_first`` False)."""
    HEAD_SEEN.clear()
    STREAM.clear()
    with httpx.Client(base_url=base, timeout=WAIT_SECONDS) as client:
        t0 = time.monotonic()
        with client.stream("GET", "/stream") as r:
            HEAD_SEEN.set()
            assert r.status_code == 200
            assert r.read() == b"first,second"
        assert STREAM == {"head_first": True}
        assert time.monotonic() - t0 >= FIRST_CHUNK_DELAY


def test_bodiless_answers(base: str) -> None:
    with httpx.Client(base_url=base) as client:
        r = client.delete("/empty")
        assert r.status_code == 204 and r.content == b""
        r = client.head("/small")
        assert r.status_code == 200 and r.content == b""
        assert client.get("/small", headers={"Connection": "close"}).json() == {"n": 0}


def test_expect_100_continue(base: str) -> None:
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert s.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"hello")
        data = b""
        while not data.endswith(b"hello"):
            chunk = s.recv(65536)
            assert chunk
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")


def _read_to_close(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_an_answer_written_as_the_client_half_closes_still_goes_out(base: str) -> None:
    """A HEAD answer is a head alone (held to the next loop turn); the client's EOF right behind
    its request makes the transport close itself, and what is held must go out first."""
    port = int(base.rsplit(":", 1)[1])
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"HEAD /small HTTP/1.1\r\nHost: x\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            assert _read_to_close(s).startswith(b"HTTP/1.1 200")


def test_pipelined_requests_are_answered_in_order(base: str) -> None:
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"".join(f"GET /small?n={n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in range(5))
            + b"GET /small?n=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = _read_to_close(s)
    bodies = [part.split(b"\r\n\r\n", 1)[1][:8] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert [b.split(b"}")[0] + b"}" for b in bodies] == [f'{{"n":{n}}}'.encode() for n in range(6)]


def test_a_malformed_request_gets_a_400_and_a_close(base: str) -> None:
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert _read_to_close(s).startswith(b"HTTP/1.1 400")
