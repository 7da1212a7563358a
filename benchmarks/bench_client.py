#!/usr/bin/env python
"""What ``mlobs.client.Monitor.log`` costs the serving path: one call, a churn row's features.

    .venv/bin/python benchmarks/bench_client.py [--calls N] [--out FILE]

Three runs of N calls each, timed one by one: against a dead service (nothing listens: every
batch fails and is retried, the queue fills and drops), against a live one (an app behind
uvicorn in this process, on a fresh SQLite file, sending in the background), and the baseline
in the same run, ``queue.Queue.put_nowait`` of the same dict (the least a hand-off to another
thread costs). Also the live run's throughput (records acknowledged by the service per second).

Timings are wall-clock on a shared machine: read the ratios more than the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from bench_feedback import _models  # type: ignore[import-not-found]
from prometheus_client import CollectorRegistry

from mlobs.api.app import create_app
from mlobs.client import Monitor
from mlobs.config import Settings
from mlobs.data import DATASETS, generate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(n: int, call: Callable[[int], Any]) -> dict[str, float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"p50_us": round(1e6 * statistics.median(times), 2),
            "p99_us": round(1e6 * times[int(0.99 * len(times))], 2)}  # fmt: skip


def run(n: int) -> dict[str, Any]:
    df = generate("churn", 1_000, seed=7)[DATASETS["churn"].feature_names].astype(object)
    rows: list[dict[str, Any]] = df.where(df.notna(), None).to_dict("records")  # type: ignore[assignment]
    out: dict[str, Any] = {"calls": n}

    q: queue.Queue[Any] = queue.Queue(maxsize=n + 1)
    out["baseline_queue_put"] = _timed(n, lambda i: q.put_nowait(("churn", rows[i % 1000])))

    dead = Monitor(f"http://127.0.0.1:{_free_port()}", max_queue=10_000, max_backoff=0.2)
    out["dead_service"] = _timed(n, lambda i: dead.log("churn", rows[i % 1000], prediction=1))
    dead.close(timeout=0.5)
    out["dead_service"]["dropped"] = dead.stats.dropped

    tmp = Path(tempfile.mkdtemp(prefix="mlobs-bench-client-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        model_dir=_models(Path(os.environ.get("MODEL_DIR", "models"))), data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'mlobs.db'}", log_level="WARNING",
    )  # fmt: skip
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, registry=CollectorRegistry()),
                                           host="127.0.0.1", port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    live = Monitor(url, max_queue=n + 1)
    t0 = time.perf_counter()
    out["live_service"] = _timed(n, lambda i: live.log("churn", rows[i % 1000], prediction=1))
    live.flush(timeout=600)
    elapsed = time.perf_counter() - t0
    live.close()
    out["live_service"]["sent"] = live.stats.sent
    out["live_service"]["acknowledged_per_s"] = round(live.stats.sent / elapsed)
    server.should_exit = True
    thread.join(30)
    base = out["baseline_queue_put"]["p50_us"]
    out["ratio_p50_vs_queue_put"] = {
        "dead": round(out["dead_service"]["p50_us"] / base, 1),
        "live": round(out["live_service"]["p50_us"] / base, 1),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    result = {
        "machine": f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} "
        f"python={platform.python_version()}",
        **run(args.calls),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
