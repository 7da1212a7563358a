#!/usr/bin/env python
"""Ground truth: label ingestion, label processing and the label-free estimate, in process.

    .venv/bin/python benchmarks/bench_feedback.py [--labels N] [--database-url URL] [--out FILE]

An app (lifespan included, background loop slowed so the benchmark drives the work) on a fresh
SQLite file (or the PostgreSQL database named by ``--database-url``), with the churn model from
``MODEL_DIR`` (trained into a temporary directory when missing):

1. ``POST /feedback/batch`` of N labels in batches of 1,000, through the ASGI app (no network):
   labels per second, against a plain SQLAlchemy ``executemany`` insert of the same rows into a
   table of the same shape in the same database (the baseline: what storing alone costs).
2. ``POST /feedback`` one label at a time, 500 calls: p50 and p99.
3. ``process_labels``: the label tracker consumes the N labels (concept-drift detector, windows
   of 1,000, each completed window evaluated and stored): labels per second.
4. ``GET /monitoring/performance/churn`` (realized over the latest 1,000 labels, estimate over the
   latest 1,000 predictions, history): p50 of 20 calls.

Timings are wall-clock on a shared machine: read the ratios more than the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, create_engine

from mlobs.api.app import create_app
from mlobs.config import Settings
from mlobs.data import DATASETS, generate
from mlobs.data.demo_models import demo_model
from mlobs.models import save_model
from mlobs.monitoring.profiles import profile_for_model, save_profile

BATCH = 1_000


def _models(model_dir: Path) -> Path:
    if (model_dir / "churn").exists():
        return model_dir
    tmp = Path(tempfile.mkdtemp(prefix="mlobs-bench-models-"))
    model = demo_model("churn")
    result = model.fit(generate("churn", 20_000, seed=42), seed=42)
    save_model(model, tmp)
    save_profile(profile_for_model(model, result.train), tmp)
    return tmp


def _baseline_insert(url: str, rows: list[dict[str, Any]]) -> float:
    """Seconds to insert the same rows with one executemany per batch, nothing else."""
    engine = create_engine(url)
    meta = MetaData()
    table = Table(
        "bench_feedback_baseline", meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("prediction_id", String(36), unique=True), Column("actual", Float),
        Column("prediction", Float), Column("probability", Float),
    )  # fmt: skip
    meta.create_all(engine)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            with engine.begin() as conn:
                conn.execute(table.insert(), rows[i : i + BATCH])
        return time.perf_counter() - t0
    finally:
        meta.drop_all(engine)
        engine.dispose()


def run(n_labels: int, database_url: str | None) -> dict[str, Any]:
    model_dir = _models(Path(os.environ.get("MODEL_DIR", "models")))
    tmp = Path(tempfile.mkdtemp(prefix="mlobs-bench-feedback-"))
    url = database_url or f"sqlite:///{tmp / 'mlobs.db'}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        model_dir=model_dir, data_dir=tmp, database_url=url, log_level="WARNING",
        drift_flush_interval=3600.0, performance_estimate_interval=3600.0,
        performance_window_size=1_000,
    )  # fmt: skip
    out: dict[str, Any] = {"labels": n_labels, "database": url.split(":")[0]}
    with TestClient(create_app(settings, registry=CollectorRegistry())) as client:
        while client.get("/health/ready").status_code != 200:
            time.sleep(0.1)
        df = generate("churn", n_labels + 500, seed=3)
        records = df[DATASETS["churn"].feature_names].astype(object)
        records = records.where(records.notna(), None).to_dict("records")
        preds: list[dict[str, Any]] = []
        for i in range(0, len(records), 5_000):
            r = client.post(
                "/predict/batch", json={"model_name": "churn", "records": records[i : i + 5_000]}
            )
            preds += r.json()["predictions"]
        y = df["churned"].astype(int).tolist()
        items = [
            {"prediction_id": p["prediction_id"], "actual": v}
            for p, v in zip(preds, y, strict=True)
        ]
        bulk, single = items[:n_labels], items[n_labels:]

        t0 = time.perf_counter()
        for i in range(0, len(bulk), BATCH):
            r = client.post("/feedback/batch", json={"items": bulk[i : i + BATCH]})
            assert r.status_code == 200, r.text
        api_s = time.perf_counter() - t0
        base_rows = [
            {"prediction_id": p["prediction_id"], "actual": v, "prediction": p["prediction"],
             "probability": p["probability"]}
            for p, v in zip(preds[:n_labels], y[:n_labels], strict=True)
        ]  # fmt: skip
        base_s = _baseline_insert(url, base_rows)
        out["batch_ingest"] = {
            "labels_per_s": round(n_labels / api_s),
            "baseline_insert_labels_per_s": round(n_labels / base_s),
            "ratio_time_vs_baseline": round(api_s / base_s, 2),
        }

        times = []
        for item in single:
            t0 = time.perf_counter()
            r = client.post("/feedback", json=item)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        times.sort()
        out["single_feedback_ms"] = {
            "p50": round(1e3 * times[len(times) // 2], 3),
            "p99": round(1e3 * times[int(len(times) * 0.99)], 3),
        }

        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        runtime.process_labels(full=True)
        proc_s = time.perf_counter() - t0
        summary = client.get("/monitoring/performance/churn").json()
        assert summary["labels"]["total"] == len(items), summary["labels"]
        out["process_labels"] = {
            "labels_per_s": round(len(items) / proc_s),
            "seconds": round(proc_s, 3),
            "windows_evaluated": summary["labels"]["windows_evaluated"],
        }
        calls = []
        for _ in range(20):
            t0 = time.perf_counter()
            client.get("/monitoring/performance/churn")
            calls.append(time.perf_counter() - t0)
        out["performance_get_ms_p50"] = round(1e3 * statistics.median(calls), 2)
        out["realized_accuracy"] = round(summary["realized"]["metrics"]["accuracy"], 4)
        out["estimated_accuracy"] = round(summary["estimated"]["metrics"]["accuracy"], 4)
        out["holdout_accuracy"] = round(summary["holdout"]["accuracy"], 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--labels", type=int, default=20_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    result = {
        "machine": f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} "
        f"python={platform.python_version()}",
        **run(args.labels, args.database_url),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
