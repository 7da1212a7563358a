#!/usr/bin/env python
"""In-process inference speed of the three models, preprocessing included, no HTTP.

    make bench                      # or: .venv/bin/python benchmarks/bench_models.py [--out FILE]

For each model: single-row latency from one validated record (a dict) to the model's output,
median and p99 over many calls; the same through a one-row pandas frame (the path we avoid);
and time per row of a 10,000-row batch. For churn, scikit-learn's own ``predict_proba`` on one
row is measured in the same run as the baseline that Treelite replaces.

Models come from MODEL_DIR when trained there, otherwise they are trained here on the default
generated data. Timings are wall-clock on a shared machine: read the ratios more than the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlobs.data import generate
from mlobs.data.demo_models import DEMO_NAMES as MODEL_NAMES
from mlobs.data.demo_models import demo_model
from mlobs.data.store import DEFAULT_ROWS
from mlobs.models import TabularModel, is_saved, load_model


def _timings(fn: Callable[[Any], object], inputs: list[Any], repeat: int) -> np.ndarray:
    for x in inputs[:200]:  # warm-up
        fn(x)
    out = np.empty(repeat)
    for i in range(repeat):
        x = inputs[i % len(inputs)]
        t = time.perf_counter()
        fn(x)
        out[i] = time.perf_counter() - t
    return out * 1e3  # ms


def _summary(ms: np.ndarray) -> dict[str, float]:
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}


def _model(name: str, model_dir: Path) -> TabularModel:
    if is_saved(model_dir, name):
        return load_model(model_dir, name)
    model = demo_model(name)
    model.fit(generate(name, DEFAULT_ROWS[name], seed=42), seed=42)
    return model


def bench(model_dir: Path, repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in MODEL_NAMES:
        model = _model(name, model_dir)
        rows = generate(name, 10_000, seed=123)[model.spec.feature_names]
        records = [
            {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")
        ]
        frames = [rows.iloc[[i]] for i in range(500)]
        r: dict[str, Any] = {
            "single_record": _summary(_timings(model.predict_record, records, repeat)),
            "single_row_frame": _summary(_timings(model.predict_frame, frames, repeat // 4)),
        }
        t = time.perf_counter()
        model.predict_records(records)
        r["batch_10k_records_us_per_row"] = (time.perf_counter() - t) / len(records) * 1e6
        t = time.perf_counter()
        model.predict_frame(rows)
        r["batch_10k_frame_us_per_row"] = (time.perf_counter() - t) / len(rows) * 1e6
        if name == "churn":
            forest = model._forest  # noqa: SLF001 - the baseline is the estimator itself
            assert model.schema is not None
            encoded = [model.schema.transform_one(rec) for rec in records[:500]]
            r["baseline_sklearn_predict_proba_single"] = _summary(
                _timings(forest.predict_proba, encoded, max(repeat // 20, 100))
            )
            r["speedup_vs_sklearn_median"] = (
                r["baseline_sklearn_predict_proba_single"]["median_ms"]
                / r["single_record"]["median_ms"]
            )
        results[name] = r
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5_000, help="single-row calls per model")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/models.json"))
    args = parser.parse_args()
    model_dir = Path(os.environ.get("MODEL_DIR", "models"))
    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "results": bench(model_dir, args.repeat),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(
        f"{'model':6} {'record p50':>11} {'record p99':>11} {'frame p50':>10} {'batch us/row':>13}"
    )
    for name, r in report["results"].items():
        s, f = r["single_record"], r["single_row_frame"]
        print(
            f"{name:6} {s['median_ms']:10.3f}ms {s['p99_ms']:10.3f}ms {f['median_ms']:9.3f}ms "
            f"{r['batch_10k_records_us_per_row']:12.2f}"
        )
    churn = report["results"]["churn"]
    print(
        f"churn sklearn predict_proba single row: "
        f"{churn['baseline_sklearn_predict_proba_single']['median_ms']:.3f} ms median "
        f"({churn['speedup_vs_sklearn_median']:.0f}x slower than the Treelite path)"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
