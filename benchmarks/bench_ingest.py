#!/usr/bin/env python
"""Predictions made elsewhere: ingestion throughput of ``POST /models/{name}/predictions``.

    .venv/bin/python benchmarks/bench_ingest.py [--rows N] [--database-url URL] [--out FILE]
        [--backfill-rows N]

An app (lifespan included) on a fresh SQLite file (or the PostgreSQL database named by
``--database-url``) with the churn model from ``MODEL_DIR`` (trained into a temporary directory
when missing). N generated churn rows with sender ids, posted in batches of 1,000 through the
ASGI app (no network), as JSON and as NDJSON; the baseline, in the same run and database: a bare
SQLAlchemy ``executemany`` of the same rows (id, model, time, features, outputs) into a table of
the prediction log's shape, one transaction per 1,000, nothing else. Then the same JSON batches
again (all duplicates), which is what a retrying sender costs.

With ``--backfill-rows N`` (1,000,000 for the published figure), also ``mlobs ingest``'s work
on a Parquet file of N churn predictions over 30 days with daily periods (read, validate, log
each row once, judge each day), against the bare insert of the same rows.

Timings are wall-clock on a shared machine: read the ratios more than the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from bench_feedback import _models  # type: ignore[import-not-found]
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import JSON, Column, DateTime, Float, MetaData, String, Table, create_engine

from mlobs.api.app import create_app
from mlobs.config import Settings
from mlobs.data import DATASETS, generate

BATCH = 1_000


def _baseline(url: str, rows: list[dict[str, Any]]) -> float:
    """Seconds to insert the rows with one executemany per batch, nothing else."""
    engine = create_engine(url)
    meta = MetaData()
    table = Table(
        "bench_ingest_baseline", meta,
        Column("model_name", String(64), primary_key=True),
        Column("id", String(128), primary_key=True),
        Column("created_at", DateTime(timezone=True)), Column("features", JSON),
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


def run(n_rows: int, database_url: str | None) -> dict[str, Any]:
    model_dir = _models(Path(os.environ.get("MODEL_DIR", "models")))
    tmp = Path(tempfile.mkdtemp(prefix="mlobs-bench-ingest-"))
    url = database_url or f"sqlite:///{tmp / 'mlobs.db'}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        model_dir=model_dir, data_dir=tmp, database_url=url, log_level="WARNING",
        drift_flush_interval=1.0, performance_estimate_interval=3600.0,
    )  # fmt: skip
    df = generate("churn", 2 * n_rows, seed=5)
    features = df[DATASETS["churn"].feature_names].astype(object)
    features = features.where(features.notna(), None).to_dict("records")
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    records = [
        {"prediction_id": f"ext-{i}", "timestamp": (start + timedelta(seconds=i)).isoformat(),
         "features": f, "prediction": int(i % 3 == 0), "probability": (i % 100) / 100}
        for i, f in enumerate(features)
    ]  # fmt: skip
    as_json, as_ndjson = records[:n_rows], records[n_rows:]
    out: dict[str, Any] = {"rows": n_rows, "batch": BATCH, "database": url.split(":")[0]}
    with TestClient(create_app(settings, registry=CollectorRegistry())) as client:
        while client.get("/health/ready").status_code != 200:
            time.sleep(0.1)

        def post(batches: list[bytes], content_type: str) -> tuple[float, int, int]:
            accepted = duplicate = 0
            t0 = time.perf_counter()
            for body in batches:
                r = client.post("/models/churn/predictions", content=body,
                                headers={"content-type": content_type})  # fmt: skip
                assert r.status_code == 202, r.text
                accepted += r.json()["accepted"]
                duplicate += r.json()["duplicate"]
            return time.perf_counter() - t0, accepted, duplicate

        json_bodies = [orjson.dumps({"records": as_json[i : i + BATCH]})
                       for i in range(0, n_rows, BATCH)]  # fmt: skip
        nd_bodies = [b"\n".join(orjson.dumps(r) for r in as_ndjson[i : i + BATCH])
                     for i in range(0, n_rows, BATCH)]  # fmt: skip
        json_s, accepted, _ = post(json_bodies, "application/json")
        assert accepted == n_rows
        nd_s, accepted, _ = post(nd_bodies, "application/x-ndjson")
        assert accepted == n_rows
        retry_s, accepted, duplicate = post(json_bodies, "application/json")
        assert (accepted, duplicate) == (0, n_rows)

    base_rows = [
        {"model_name": "churn", "id": r["prediction_id"],
         "created_at": datetime.fromisoformat(r["timestamp"]), "features": r["features"],
         "prediction": float(r["prediction"]), "probability": r["probability"]}
        for r in as_json
    ]  # fmt: skip
    base_s = _baseline(url, base_rows)
    out["json"] = {"rows_per_s": round(n_rows / json_s), "seconds": round(json_s, 3),
                   "ratio_time_vs_baseline": round(json_s / base_s, 2)}  # fmt: skip
    out["ndjson"] = {"rows_per_s": round(n_rows / nd_s), "seconds": round(nd_s, 3),
                     "ratio_time_vs_baseline": round(nd_s / base_s, 2)}  # fmt: skip
    out["retried_json_all_duplicates"] = {"rows_per_s": round(n_rows / retry_s),
                                          "ratio_time_vs_baseline": round(retry_s / base_s, 2)}  # fmt: skip
    out["baseline_insert"] = {"rows_per_s": round(n_rows / base_s), "seconds": round(base_s, 3)}
    return out


def run_backfill(n_rows: int, database_url: str | None) -> dict[str, Any]:
    from mlobs.api.runtime import build_drift_config
    from mlobs.tools.ingest import backfill_local

    model_dir = _models(Path(os.environ.get("MODEL_DIR", "models")))
    tmp = Path(tempfile.mkdtemp(prefix="mlobs-bench-backfill-"))
    url = database_url or f"sqlite:///{tmp / 'mlobs.db'}"
    df = generate("churn", n_rows, seed=9)
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    step = 30 * 86_400 / n_rows
    df["ts"] = [start + timedelta(seconds=i * step) for i in range(n_rows)]
    df["id"] = [f"bf-{i}" for i in range(n_rows)]
    df["proba"] = (np.arange(n_rows) % 100) / 100
    df.to_parquet(tmp / "log.parquet")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    t0 = time.perf_counter()
    out = backfill_local(url, model_dir, "churn", tmp / "log.parquet", timestamp_col="ts",
                         id_col="id", probability_col="proba", period="day",
                         config=build_drift_config(settings))  # fmt: skip
    ours = time.perf_counter() - t0
    assert out.new == n_rows, out.new
    features = df[DATASETS["churn"].feature_names].astype(object)
    features = features.where(features.notna(), None).to_dict("records")
    base_rows = [
        {"model_name": "churn", "id": i, "created_at": t, "features": f, "prediction": 0.0,
         "probability": p}
        for i, t, f, p in zip(df["id"], df["ts"], features, df["proba"], strict=True)
    ]  # fmt: skip
    base = _baseline(url, base_rows)
    return {"rows": n_rows, "periods": len(out.periods), "seconds": round(ours, 1),
            "rows_per_s": round(n_rows / ours), "baseline_rows_per_s": round(n_rows / base),
            "ratio_time_vs_baseline": round(ours / base, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--backfill-rows", type=int, default=0)
    args = ap.parse_args()
    result = {
        "machine": f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} "
        f"python={platform.python_version()}",
        **run(args.rows, args.database_url),
    }
    if args.backfill_rows:
        result["backfill"] = run_backfill(args.backfill_rows, args.database_url)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
