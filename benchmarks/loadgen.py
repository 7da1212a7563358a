#!/usr/bin/env python
"""An open-loop HTTP load generator with microsecond timing, run as its own process.

    python benchmarks/loadgen.py --url http://127.0.0.1:8000/predict/fraud --body-file b.json \
        --rate 500 --seconds 10 [--connections 8]

Request i is due at start + i / rate. Its latency runs from that due time (not from when a
connection was free) to the end of the response, so a stalled server cannot hide its backlog
(no coordinated omission). Prints one JSON object: counts by status, p50/p90/p99/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import numpy as np


async def _worker(
    host: str,
    port: int,
    request: bytes,
    due: asyncio.Queue[float | None],
    out: list[tuple[float, int]],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (t_due := await due.get()) is not None:
            delay = t_due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            out.append((time.perf_counter() - t_due, status))
    finally:
        writer.close()


async def run(
    url: str, body: bytes, rate: float, seconds: float, connections: int
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    due: asyncio.Queue[float | None] = asyncio.Queue()
    out: list[tuple[float, int]] = []
    workers = [
        asyncio.create_task(_worker(host, port, request, due, out)) for _ in range(connections)
    ]
    start = time.perf_counter() + 0.05
    n = int(rate * seconds)
    for i in range(n):
        due.put_nowait(start + i / rate)
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    lat = np.array([x[0] for x in out]) * 1e3
    statuses: dict[str, int] = {}
    for _, s in out:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    return {
        "requests": len(out),
        "rate": rate,
        "statuses": statuses,  # type: ignore[dict-item]
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--body-file", required=True)
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=8)
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    body = open(a.body_file, "rb").read()
    print(json.dumps(asyncio.run(run(a.url, body, a.rate, a.seconds, a.connections))))


if __name__ == "__main__":
    main()
