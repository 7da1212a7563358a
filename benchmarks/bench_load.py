#!/usr/bin/env python
"""Load: a steady rate for a minute, then a graceful stop that loses nothing.

    make bench-load        # or: .venv/bin/python benchmarks/bench_load.py [--seconds 60]

Bounded in time and count, loopback only. The service (`mlobs serve`, one process, SQLite log in
a temp directory, models from MODEL_DIR) starts as its own process; then:

1. Warm-up: 10 s of wrk closed loop on /predict/fraud, whose throughput is the measured
   saturation. Resident memory (VmRSS) is read after it, of the server alone and with its
   children (the log's writer process).
2. `--seconds` (default 60) at a fixed rate of half that saturation (benchmarks/loadgen.py, open
   loop, latency from each request's due time): errors, p50, p99. Resident memory after the run.
   The serving thread's CPU per request during it and its busy share (schedstat): at a fixed rate
   a request costs more than at saturation (no shared wake-ups), and the tail follows how busy
   that thread is.
3. SIGTERM: the service drains its log queue and exits; the database then holds exactly the
   predictions the service counted as served (mlobs_predictions_total, read just before).
4. The floor, for reading the latencies: 20 s of the same rate from the same generator against
   a null server (``loadgen.py --calibrate``), after the service has stopped. The share of CPU
   time the hypervisor stole during the run (``cpu_steal_share``) is reported with it.

Targets (from the hardening issue): no errors, p99 under 5x p50, memory after the run within 10%
of after warm-up, logged = served. The script prints each figure and whether it is met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from mlobs.data.demo_models import DEMO_NAMES as MODEL_NAMES
from mlobs.storage.tables import predictions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_http import _fixed_rate, _free_port, _records, _wrk  # noqa: E402


def _rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))  # type: ignore[union-attr]


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of the server and its children (the log's writer process)."""
    total = _rss_kib(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += _rss_kib(int(child))
    return total


def _thread_cpu_seconds(pid: int) -> float:
    """CPU time of a process's main thread (the event loop serving requests), from schedstat
    (nanoseconds, not clock ticks)."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0]) / 1e9


def _served(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("mlobs_predictions_total{") and 'status="success"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/load.json")
    args = ap.parse_args()
    model_dir = Path(os.environ.get("MODEL_DIR", ROOT / "models")).resolve()
    if not all((model_dir / m / "metadata.json").exists() for m in MODEL_NAMES):
        subprocess.run(
            [sys.executable, "-m", "mlobs", "train-models", "--only-missing"],
            check=True, env={**os.environ, "MODEL_DIR": str(model_dir)},
        )  # fmt: skip
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        db = tmp / "mlobs.db"
        env = {
            **os.environ, "MODEL_DIR": str(model_dir), "DATA_DIR": str(tmp),
            "DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "mlobs", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server did not become ready")
                time.sleep(0.5)
            body = json.dumps(_records("fraud", 1, seed=1)[0])
            saturation = _wrk(f"{base}/predict/fraud", body, 10, tmp)
            rss_warm, tree_warm = _rss_kib(server.pid), _tree_rss_kib(server.pid)
            rate = saturation / 2
            cpu0, t0 = _thread_cpu_seconds(server.pid), time.monotonic()
            run = _fixed_rate(f"{base}/predict/fraud", body, rate, args.seconds, tmp)
            loop_cpu, loop_wall = _thread_cpu_seconds(server.pid) - cpu0, time.monotonic() - t0
            time.sleep(1.0)
            rss_after, tree_after = _rss_kib(server.pid), _tree_rss_kib(server.pid)
            served = _served(base)
            t0 = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(120)
            stop_s = time.monotonic() - t0
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        engine = create_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            logged = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
        engine.dispose()
    floor = json.loads(
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks/loadgen.py"), "--calibrate",
             "--rate", f"{rate:.1f}", "--seconds", "20"],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    errors = sum(n for s, n in run["statuses"].items() if s != "200")
    result: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} "
        f"python={platform.python_version()}",
        "saturation_rps": round(saturation),
        "rate_rps": round(rate),
        "seconds": args.seconds,
        "requests": sum(run["statuses"].values()),
        "errors": errors,
        "p50_ms": run["p50_ms"],
        "p99_ms": run["p99_ms"],
        "p99_over_p50": round(run["p99_ms"] / run["p50_ms"], 2),
        "send_late_p99_ms": run["send_late_p99_ms"],
        # The serving thread's CPU per request at this rate, and how busy it was: the tail
        # follows this utilisation (benchmarks/RESULTS.md, Load, session 5).
        "loop_cpu_ms_per_request": round(loop_cpu * 1e3 / max(sum(run["statuses"].values()), 1), 3),
        "loop_busy_share": round(loop_cpu / loop_wall, 3),
        "saturation_ms_per_request": round(1e3 / saturation, 3),
        "cpu_steal_share": run["cpu_steal_share"],
        "generator_floor": {
            "p50_ms": floor["p50_ms"],
            "p99_ms": floor["p99_ms"],
            "p99_over_p50": round(floor["p99_ms"] / floor["p50_ms"], 2),
        },
        "rss_after_warmup_mib": round(rss_warm / 1024, 1),
        "rss_after_run_mib": round(rss_after / 1024, 1),
        "rss_growth": round(rss_after / rss_warm - 1, 4),
        "rss_with_children_after_warmup_mib": round(tree_warm / 1024, 1),
        "rss_with_children_after_run_mib": round(tree_after / 1024, 1),
        "rss_with_children_growth": round(tree_after / tree_warm - 1, 4),
        "served": int(served),
        "logged": int(logged),
        "exit_code": code,
        "stop_seconds": round(stop_s, 2),
    }
    result["targets"] = {
        "no_errors": errors == 0,
        "p99_under_5x_p50": result["p99_over_p50"] < 5,
        "rss_within_10pct": abs(result["rss_growth"]) <= 0.10
        and abs(result["rss_with_children_growth"]) <= 0.10,
        "logged_equals_served": int(logged) == int(served),
        # uvicorn re-raises the SIGTERM it handled after its graceful shutdown.
        "clean_exit": code in (0, -signal.SIGTERM),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
