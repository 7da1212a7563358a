#!/usr/bin/env python
"""An open-loop HTTP load generator with microsecond timing, run as its own process.

    python benchmarks/loadgen.py --url http://127.0.0.1:8000/predict/fraud --body-file b.json \
        --rate 500 --seconds 10 [--connections 8] [--jsonl]

With ``--jsonl`` the body file holds one JSON body per line, sent in turn (request i sends line
i modulo their number): traffic drawn from a distribution instead of one record repeated.

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
    requests: list[bytes],
    due: asyncio.Queue[tuple[int, float] | None],
    out: list[tuple[float, int]],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (item := await due.get()) is not None:
            i, t_due = item
            delay = t_due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(requests[i % len(requests)])
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
    url: str, bodies: list[bytes], rate: float, seconds: float, connections: int
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [
        (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    out: list[tuple[float, int]] = []
    workers = [
        asyncio.create_task(_worker(host, port, requests, due, out)) for _ in range(connections)
    ]
    start = time.perf_counter() + 0.05
    n = int(rate * seconds)
    for i in range(n):
        due.put_nowait((i, start + i / rate))
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
    p.add_argument("--jsonl", action="store_true", help="one body per line, sent in turn")
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    with open(a.body_file, "rb") as fh:
        data = fh.read()
    bodies = [line for line in data.splitlines() if line.strip()] if a.jsonl else [data]
    print(json.dumps(asyncio.run(run(a.url, bodies, a.rate, a.seconds, a.connections))))


if __name__ == "__main__":
    main()
