#!/usr/bin/env python
"""HTTP latency and throughput of /predict/* against an echo route, and of /predict/batch.

    make bench-http          # or: .venv/bin/python benchmarks/bench_http.py [--seconds 10]

Needs `wrk` (Debian: apt-get install -y wrk). The server runs in its own process
(uvicorn, one worker, no access log) on a free loopback port; load comes from other processes.

1. Closed loop (wrk, 2 connections, one thread): saturation throughput of echo and predict.
2. Fixed rate at about half the echo route's saturation (``loadgen.py``: open loop, latency
   from each request's due time, microsecond timing): p50 and p99 of echo and predict.
3. /predict/batch with 10,000 records: wall time per record, against the in-process
   `predict_records` of the same rows measured in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from mlobs.data import DATASETS, generate
from mlobs.data.demo_models import DEMO_NAMES as MODEL_NAMES
from mlobs.models import load_model

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records(name: str, n: int, seed: int) -> list[dict[str, Any]]:
    df = generate(name, n, seed=seed)[DATASETS[name].feature_names]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def _wrk(url: str, body: str, seconds: int, tmp: Path) -> float:
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", "-c2", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx responses from {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def _cpu_ticks() -> list[int]:
    """The machine's CPU time counters (/proc/stat): user nice system idle iowait irq softirq
    steal. Empty where there is no /proc."""
    try:
        with open("/proc/stat") as fh:
            return [int(x) for x in fh.readline().split()[1:9]]
    except OSError:
        return []


def _steal_share(before: list[int], after: list[int]) -> float | None:
    """The share of CPU time the hypervisor gave to others between two readings: a virtual
    machine's noisy neighbours, which no figure of ours can correct for."""
    if not before or not after:
        return None
    delta = [b - a for a, b in zip(before, after, strict=True)]
    return round(delta[7] / sum(delta), 4) if sum(delta) else None


def _fixed_rate(url: str, body: str, rate: float, seconds: int, tmp: Path) -> dict[str, Any]:
    path = tmp / "body.json"
    path.write_text(body)
    ticks = _cpu_ticks()
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/loadgen.py"),
            "--url",
            url,
            "--body-file",
            str(path),
            "--rate",
            f"{rate:.1f}",
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    result["cpu_steal_share"] = _steal_share(ticks, _cpu_ticks())
    if set(result["statuses"]) != {"200"}:
        raise RuntimeError(f"statuses {result['statuses']} from {url}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each load run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/http.json")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    model_dir = Path(os.environ.get("MODEL_DIR", ROOT / "models")).resolve()
    if not all((model_dir / m / "metadata.json").exists() for m in MODEL_NAMES):
        subprocess.run(
            [sys.executable, "-m", "mlobs", "train-models", "--only-missing"],
            check=True,
            env={**os.environ, "MODEL_DIR": str(model_dir)},
        )

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env = {
            **os.environ,
            "MODEL_DIR": str(model_dir),
            "DATA_DIR": str(tmp / "data"),
            "LOG_LEVEL": "WARNING",
        }
        # As `mlobs serve` runs it: uvicorn with the protocol that sends a response in one write.
        launcher = (
            "import sys, uvicorn; from mlobs.api.http import CoalescingHttpToolsProtocol as P; "
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
            f"uvicorn.run('bench_app:create', factory=True, host='127.0.0.1', port={port}, "
            "http=P, access_log=False, log_level='warning')"
        )
        server = subprocess.Popen(
            [sys.executable, "-c", launcher],
            env=env,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server did not become ready")
                time.sleep(0.5)
            results = _run(base, args.seconds, tmp, model_dir)
        finally:
            server.terminate()
            server.wait(30)
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    _print(results)
    print(f"written to {args.out}")


def _run(base: str, seconds: int, tmp: Path, model_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in MODEL_NAMES:
        body = json.dumps(_records(name, 1, seed=1)[0])
        # Warm both routes.
        for route in ("echo", "predict"):
            for _ in range(200):
                httpx.post(
                    f"{base}/{route}/{name}",
                    content=body,
                    headers={"content-type": "application/json"},
                ).raise_for_status()
        echo_rps = _wrk(f"{base}/echo/{name}", body, seconds, tmp)
        predict_rps = _wrk(f"{base}/predict/{name}", body, seconds, tmp)
        rate = echo_rps / 2
        echo = _fixed_rate(f"{base}/echo/{name}", body, rate, seconds, tmp)
        predict = _fixed_rate(f"{base}/predict/{name}", body, rate, seconds, tmp)
        # The same comparison at half of /predict's own saturation, where neither route queues.
        low = predict_rps / 2
        echo_low = _fixed_rate(f"{base}/echo/{name}", body, low, seconds, tmp)
        predict_low = _fixed_rate(f"{base}/predict/{name}", body, low, seconds, tmp)
        results[name] = {
            "closed_loop_rps": {"echo": echo_rps, "predict": predict_rps},
            "fixed_rate_rps": rate,
            "echo": echo,
            "predict": predict,
            "p50_ratio_predict_over_echo": predict["p50_ms"] / echo["p50_ms"],
            "half_predict_saturation": {
                "rate_rps": low,
                "echo": echo_low,
                "predict": predict_low,
                "p50_ratio_predict_over_echo": predict_low["p50_ms"] / echo_low["p50_ms"],
            },
        }
    # Batch: 10,000 records over HTTP against the same rows in-process.
    records = _records("fraud", 10_000, seed=2)
    payload = json.dumps({"model_name": "fraud", "records": records})
    model = load_model(model_dir, "fraud")
    t = time.perf_counter()
    model.predict_records(records)
    in_process = time.perf_counter() - t
    with httpx.Client(timeout=120) as client:
        client.post(
            f"{base}/predict/batch", content=payload, headers={"content-type": "application/json"}
        ).raise_for_status()
        t = time.perf_counter()
        r = client.post(
            f"{base}/predict/batch", content=payload, headers={"content-type": "application/json"}
        )
        http = time.perf_counter() - t
    r.raise_for_status()
    results["batch_10k_fraud"] = {
        "http_us_per_record": http / 1e4 * 1e6,
        "in_process_us_per_record": in_process / 1e4 * 1e6,
        "ratio_http_over_in_process": http / in_process,
    }
    return results


def _print(results: dict[str, Any]) -> None:
    print(
        f"{'model':6} {'echo rps':>9} {'pred rps':>9} {'rate':>6} {'echo p50':>9} "
        f"{'echo p99':>9} {'pred p50':>9} {'pred p99':>9} {'p50 ratio':>9}"
    )
    for name in MODEL_NAMES:
        r = results[name]
        print(
            f"{name:6} {r['closed_loop_rps']['echo']:9.0f} {r['closed_loop_rps']['predict']:9.0f} "
            f"{r['fixed_rate_rps']:6.0f} {r['echo']['p50_ms']:8.2f}ms {r['echo']['p99_ms']:8.2f}ms "
            f"{r['predict']['p50_ms']:8.2f}ms {r['predict']['p99_ms']:8.2f}ms "
            f"{r['p50_ratio_predict_over_echo']:9.2f}"
        )
    print("at half of /predict's own saturation:")
    for name in MODEL_NAMES:
        h = results[name]["half_predict_saturation"]
        print(
            f"{name:6} rate {h['rate_rps']:5.0f}  echo p50 {h['echo']['p50_ms']:.2f}ms "
            f"p99 {h['echo']['p99_ms']:.2f}ms  predict p50 {h['predict']['p50_ms']:.2f}ms "
            f"p99 {h['predict']['p99_ms']:.2f}ms  ratio {h['p50_ratio_predict_over_echo']:.2f}"
        )
    b = results["batch_10k_fraud"]
    print(
        f"batch 10k fraud: {b['http_us_per_record']:.1f} us/record over HTTP, "
        f"{b['in_process_us_per_record']:.1f} us/record in-process "
        f"({b['ratio_http_over_in_process']:.1f}x)"
    )


if __name__ == "__main__":
    main()
