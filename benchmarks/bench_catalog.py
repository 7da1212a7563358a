#!/usr/bin/env python
"""Your own models: registration time against the reference's size, and single-row prediction
of registered ONNX and skops models against the library's own call, in the same run.

    make bench-catalog          # or: .venv/bin/python benchmarks/bench_catalog.py [--out FILE]

Registration: an XGBoost booster and a scikit-learn pipeline (skops) over 20 numeric and 4
categorical columns, registered from references of 1,000 to 100,000 rows (labelled: holdout
figures and calibration included), median of 3 runs per size.

Single row: from one validated record (a dict of the features, as the API hands it over) to the
output, through ``predict_record`` of the model loaded from the catalogue; baseline, the
library's own call on the same row already prepared (onnxruntime ``session.run`` on the input
dict; the pipeline's ``predict_proba`` on a one-row frame). Goal: ours <= 1.5x onnxruntime's.

Hot registration: a model registered into the MODEL_DIR of a running `mlobs serve --workers 2`;
the time until both workers' /health show its version (bounded by CATALOG_POLL_SECONDS).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_models import _timings

from mlobs.models import load_model
from mlobs.storage.model_catalog import Registration, register

NUMERIC, CATEGORICAL = 20, 4


def make_data(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, NUMERIC))
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(NUMERIC)])
    for j in range(CATEGORICAL):
        df[f"c{j}"] = rng.choice(["a", "b", "c", "d", "e"], size=n)
    logit = x[:, 0] - 0.5 * x[:, 1] + (df["c0"] == "a") * 1.0
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def make_artifacts(folder: Path) -> dict[str, Path]:
    import skops.io as sio
    import xgboost as xgb
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train = make_data(20_000, seed=1)
    num = [f"x{i}" for i in range(NUMERIC)]
    cat = [f"c{j}" for j in range(CATEGORICAL)]
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4, "nthread": 1},
        xgb.DMatrix(train[num], label=train["label"]), num_boost_round=50,
    )  # fmt: skip
    booster.save_model(folder / "model.ubj")
    prep = ColumnTransformer(
        [("n", StandardScaler(), num), ("c", OneHotEncoder(handle_unknown="ignore"), cat)]
    )
    pipe = Pipeline([("prep", prep), ("m", LogisticRegression(max_iter=500))])
    pipe.fit(train[num + cat], train["label"])
    sio.dump(pipe, folder / "model.skops")
    types = [(c, FloatTensorType([None, 1])) for c in num] + [
        (c, StringTensorType([None, 1])) for c in cat
    ]
    onx = to_onnx(pipe, initial_types=types, options={id(pipe.steps[-1][1]): {"zipmap": False}})
    (folder / "model.onnx").write_bytes(onx.SerializeToString())
    return {"xgboost": folder / "model.ubj", "skops": folder / "model.skops",
            "onnx": folder / "model.onnx"}  # fmt: skip


def bench_registration(artifacts: dict[str, Path], sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for fmt in ("xgboost", "skops"):
        for n in sizes:
            ref = make_data(n, seed=2)
            if fmt == "xgboost":
                ref = ref.drop(columns=[f"c{j}" for j in range(CATEGORICAL)])
            times = []
            for _ in range(3):
                with tempfile.TemporaryDirectory() as tmp:
                    t = time.perf_counter()
                    register(Path(tmp), Registration(name="m", reference=ref, target="label",
                                                     artifact=artifacts[fmt]))  # fmt: skip
                    times.append(time.perf_counter() - t)
            rows.append({"format": fmt, "rows": n, "median_s": statistics.median(times)})
            print(f"register {fmt:8s} {n:>8,} rows: {statistics.median(times):.2f} s")
    return rows


def _timed(fn: Callable[[Any], object], inputs: list[Any], repeat: int) -> np.ndarray:
    """Microseconds per call, as ``make bench`` times the demo models (200 warm-up calls)."""
    return _timings(fn, inputs, repeat) * 1e3


def bench_single_row(artifacts: dict[str, Path], repeat: int) -> dict[str, Any]:
    import onnxruntime as ort

    from mlobs.models.skops_model import load_skops

    ref = make_data(5_000, seed=3)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("onnx", "skops"):
            register(Path(tmp), Registration(name=fmt, reference=ref, target="label",
                                             artifact=artifacts[fmt]))  # fmt: skip
        records = [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in ref.drop(columns="label").head(1_000).to_dict("records")
        ]
        onnx_model, skops_model = load_model(Path(tmp), "onnx"), load_model(Path(tmp), "skops")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(artifacts["onnx"]), options,
                                       providers=["CPUExecutionProvider"])  # fmt: skip
        names = [i.name for i in session.get_inputs()]
        feeds = [
            {
                n: np.array([[r[n]]], dtype=object if n.startswith("c") else np.float32)
                for n in names
            }
            for r in records
        ]
        pipe = load_skops(artifacts["skops"].read_bytes())
        frames = [pd.DataFrame([r]) for r in records]
        cases = {
            "onnxruntime session.run (prepared input)": (lambda f: session.run(None, f), feeds),
            "mlobs onnx predict_record": (onnx_model.predict_record, records),
            "scikit-learn predict_proba (one-row frame)": (lambda f: pipe.predict_proba(f), frames),
            "mlobs skops predict_record": (skops_model.predict_record, records),
        }
        for label, (fn, inputs) in cases.items():
            us = _timed(fn, inputs, repeat)
            out[label] = {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99))}
            print(
                f"{label:45s} median {np.median(us):8.1f} us  p99 {np.percentile(us, 99):8.1f} us"
            )
    base = out["onnxruntime session.run (prepared input)"]["median_us"]
    out["onnx_ratio"] = out["mlobs onnx predict_record"]["median_us"] / base
    sk = out["scikit-learn predict_proba (one-row frame)"]["median_us"]
    out["skops_ratio"] = out["mlobs skops predict_record"]["median_us"] / sk
    print(f"ratio onnx {out['onnx_ratio']:.2f} (goal <= 1.5), skops {out['skops_ratio']:.2f}")
    return out


def bench_hot_registration(artifacts: dict[str, Path], poll: float, rounds: int) -> dict[str, Any]:
    """`mlobs serve --workers 2` with CATALOG_POLL_SECONDS=poll: seconds from the end of a
    registration into MODEL_DIR until both workers serve the new version (each worker polls)."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    delays = []
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        ref = make_data(2_000, seed=5).drop(columns=[f"c{j}" for j in range(CATEGORICAL)])
        register(models, Registration(name="first", reference=ref, target="label",
                                      artifact=artifacts["xgboost"]))  # fmt: skip
        env = {**os.environ, "MODEL_DIR": str(models), "DATA_DIR": str(Path(tmp) / "data"),
               "LOG_LEVEL": "WARNING", "CATALOG_POLL_SECONDS": str(poll)}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlobs", "serve", "--workers", "2", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            workers: set[int] = set()
            deadline = time.monotonic() + 300
            while len(workers) < 2 and time.monotonic() < deadline:
                try:
                    body = httpx.get(f"{url}/health", timeout=5).json()
                    if body["status"] != "unhealthy":
                        workers.add(body["worker"])
                except httpx.HTTPError:
                    time.sleep(0.2)
            for i in range(rounds):
                done = register(models, Registration(
                    name="cancer", reference=ref, target="label", artifact=artifacts["xgboost"],
                    decision_threshold=0.3 + i / 100,
                ))  # fmt: skip
                t0, seen = time.monotonic(), set()
                version = done.manifest.version
                while seen != workers and time.monotonic() - t0 < 120:
                    body = httpx.get(f"{url}/health", timeout=5).json()
                    if body["models"].get("cancer", {}).get("version") == version:
                        seen.add(body["worker"])
                delays.append(time.monotonic() - t0)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
    out = {"poll_seconds": poll, "rounds": rounds, "median_s": statistics.median(delays),
           "max_s": max(delays)}  # fmt: skip
    print(
        f"hot registration, poll {poll:g} s: both workers serve it after median "
        f"{out['median_s']:.2f} s, max {out['max_s']:.2f} s ({rounds} rounds)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=5_000)
    parser.add_argument("--poll", type=float, default=5.0, help="CATALOG_POLL_SECONDS")
    parser.add_argument("--rounds", type=int, default=5, help="hot registrations timed")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = make_artifacts(Path(tmp))
        result = {
            "machine": f"{platform.machine()} {platform.python_version()}",
            "registration": bench_registration(artifacts, [int(s) for s in args.sizes.split(",")]),
            "single_row": bench_single_row(artifacts, args.repeat),
            "hot_registration": bench_hot_registration(artifacts, args.poll, args.rounds),
        }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
