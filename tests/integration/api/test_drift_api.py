"""Drift and quality endpoints on SQLite and PostgreSQL: checks, live windows, history, metrics,
the reference, and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from helpers import eventually, sample_records
from mlobs.data import DATASETS, DriftSpec, generate


def _drifted(name: str, n: int, intensity: float, seed: int = 9) -> list[dict[str, Any]]:
    df = generate(name, n, seed=seed, drift=DriftSpec.preset(name, intensity))
    df = df[DATASETS[name].feature_names]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def _metric(client: TestClient, name: str, labels: dict[str, str]) -> float | None:
    return client.app.state.runtime.registry.get_sample_value(name, labels)  # type: ignore[attr-defined, no-any-return]


def test_check_posted_records_without_and_with_drift(client: TestClient) -> None:
    calm_records = sample_records("churn", 400, seed=3)
    calm = client.post("/monitoring/drift/check",
                       json={"model_name": "churn", "records": calm_records})  # fmt: skip
    assert calm.status_code == 200, calm.text
    body = calm.json()
    assert body["dataset_name"] == "request"
    assert body["drift"]["status"] == "ok" and not body["drift"]["dataset_drift"]
    assert set(body["drift"]["features"]) == set(DATASETS["churn"].feature_names)
    assert body["drift"]["prediction"]["method"] == "psi"

    moved = client.post("/monitoring/drift/check",
                        json={"model_name": "churn", "records": _drifted("churn", 400, 0.6)})  # fmt: skip
    d = moved.json()["drift"]
    assert d["dataset_drift"] and d["drift_share"] >= 0.3
    assert d["features"]["monthly_charges"]["status"] in ("warning", "critical")
    assert d["features"]["payment_method"]["bins"][-1] == "(unseen)"
    assert _metric(client, "mlobs_dataset_drift_detected",
                   {"model_name": "churn", "dataset_name": "request"}) == 1.0  # fmt: skip


@pytest.mark.parametrize("drift_process", [False, True], ids=["thread", "process"])
def test_live_windows_close_evaluate_and_show_in_status_history_and_metrics(
    db_url: str, app_factory: Callable[..., TestClient], drift_process: bool
) -> None:
    client = app_factory(database_url=db_url, drift_window_size=600, drift_min_samples=500,
                         drift_flush_interval=0.1, drift_process=drift_process)  # fmt: skip
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert (runtime.window_process is not None) == drift_process
    assert client.post("/monitoring/drift/check", json={"model_name": "price"}).status_code == 409
    records = _drifted("price", 650, 0.8, seed=4)
    r = client.post("/predict/batch", json={"model_name": "price", "records": records})
    assert r.status_code == 200
    eventually(
        lambda: client.get("/monitoring/drift/history/price").json()["results"],
        interval=0.1,
        message="no live window was evaluated",
    )
    history = client.get("/monitoring/drift/history/price").json()["results"]
    assert len(history) == 1
    # Metrics are set right after the result is stored, on the monitor's thread: wait for them.
    eventually(
        lambda: (
            _metric(client, "mlobs_prediction_drift_score", {"model_name": "price"}) is not None
        ),
        message="drift metrics never set",
    )
    result = history[0]
    assert result["dataset_name"] == "live" and result["n_rows"] >= 600
    assert result["dataset_drift"] and result["report"]["drift_share"] >= 0.3
    status = client.get("/monitoring/drift/status/price").json()
    assert status["last_result"]["window_id"] == result["window_id"]
    assert status["window"]["size"] == 600 and status["thresholds"]["psi_threshold_warning"] == 0.1
    assert status["reference"]["features"]["neighborhood"] == "categorical"
    assert _metric(client, "mlobs_drift_share", {"model_name": "price"}) == pytest.approx(
        result["drift_share"]
    )
    assert _metric(client, "mlobs_dataset_drift_detected",
                   {"model_name": "price", "dataset_name": "live"}) == 1.0  # fmt: skip
    assert _metric(client, "mlobs_drift_score",
                   {"model_name": "price", "feature": "area_sqm"}) is not None  # fmt: skip
    assert _metric(client, "mlobs_prediction_drift_score", {"model_name": "price"}) is not None
    # Later traffic opens the next window: a live check works, and is below its minimum.
    for rec in records[:20]:
        assert client.post("/predict/price", json=rec).status_code == 200
    live = client.post("/monitoring/drift/check", json={"model_name": "price"}).json()
    assert live["dataset_name"] == "live" and live["drift"]["status"] == "insufficient_data"


def test_quality_check_reports_each_problem_with_a_status(client: TestClient) -> None:
    records = sample_records("fraud", 200, seed=5)
    for r in records[:40]:
        r["amount"] = None  # 20% missing
    for r in records[40:60]:
        r["merchant_category"] = "space_tourism"  # 10% unseen
    records[60]["distance_from_home_km"] = 1e6  # outside the reference range
    records += records[100:110]  # 10 duplicates
    q = client.post("/monitoring/quality/check", json={"model_name": "fraud", "records": records})
    assert q.status_code == 200, q.text
    body = q.json()
    assert body["features"]["amount"]["missing_share"] == pytest.approx(40 / 210)
    assert body["features"]["amount"]["status"] == "critical"
    present = sum(r["merchant_category"] is not None for r in records)  # unseen among present
    assert body["features"]["merchant_category"]["unseen_share"] == pytest.approx(20 / present)
    assert body["features"]["distance_from_home_km"]["out_of_range_share"] > 0
    assert body["duplicate_rows"] == 10 and body["duplicate_status"] == "warning"  # 4.8%
    assert body["status"] == "critical"
    assert _metric(client, "mlobs_duplicate_rows_count",
                   {"model_name": "fraud", "dataset_name": "request"}) == 10  # fmt: skip


def test_replacing_the_reference(client: TestClient) -> None:
    shifted = _drifted("churn", 300, 0.6)
    r = client.post("/monitoring/reference/churn", json={"records": shifted})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == 300
    # Against the new reference, the same shifted rows are no longer drift.
    again = client.post("/monitoring/drift/check", json={"model_name": "churn", "records": shifted})
    assert not again.json()["drift"]["dataset_drift"]
    assert client.get("/monitoring/drift/status/churn").json()["reference"]["rows"] == 300
    small = client.post("/monitoring/reference/churn", json={"records": shifted[:10]})
    assert small.status_code == 422 and small.json()["detail"][0]["loc"] == ["body", "records"]


def test_bad_input(client: TestClient) -> None:
    assert client.get("/monitoring/drift/status/weather").status_code == 404
    assert client.get("/monitoring/drift/history/weather").status_code == 404
    assert client.post("/monitoring/reference/weather", json={"records": [{}]}).status_code == 404
    # An unknown model is a 404 in a body as in a path.
    r = client.post("/monitoring/drift/check", json={"model_name": "weather", "records": [{}]})
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["body", "model_name"]
    r = client.post("/monitoring/drift/check", json={"model_name": "weather"})
    assert r.status_code == 404
    records = sample_records("fraud", 5)
    records[2] = records[2] | {"hour": 99}
    r = client.post("/monitoring/drift/check", json={"model_name": "fraud", "records": records})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "records", 2, "hour"]
    r = client.post("/monitoring/quality/check", json={"model_name": "fraud", "records": []})
    assert r.status_code == 422
    r = client.post("/monitoring/quality/check", json={"model_name": "fraud"})
    assert r.status_code == 409 and "no live window" in r.json()["detail"][0]["msg"]
    # An all-missing column gets a reasoned "no score", not an error.
    blank = [rec | {"amount": None} for rec in sample_records("fraud", 150, seed=6)]
    r = client.post("/monitoring/drift/check", json={"model_name": "fraud", "records": blank})
    assert r.status_code == 200
    amount = r.json()["drift"]["features"]["amount"]
    assert amount["score"] is None and amount["status"] == "insufficient_data"
    assert amount["reason"] == "no non-missing values"


def test_live_monitoring_goes_on_after_the_reference_is_replaced(
    db_url: str, app_factory: Callable[..., TestClient]
) -> None:
    client = app_factory(database_url=db_url, drift_window_size=500, drift_flush_interval=0.1)
    before = sample_records("churn", 100, seed=12)
    assert (
        client.post("/predict/batch", json={"model_name": "churn", "records": before}).status_code
        == 200
    )
    # Counted into the shared window on the old reference (the gauge follows each push).
    eventually(
        lambda: _metric(client, "mlobs_drift_window_rows", {"model_name": "churn"}) == 100,
        message="the first 100 rows never reached the open window",
    )
    shifted = _drifted("churn", 300, 0.6)
    assert client.post("/monitoring/reference/churn", json={"records": shifted}).status_code == 200
    more = _drifted("churn", 520, 0.6, seed=13)
    assert (
        client.post("/predict/batch", json={"model_name": "churn", "records": more}).status_code
        == 200
    )
    eventually(
        lambda: client.get("/monitoring/drift/history/churn").json()["results"],
        interval=0.1,
        message="no window evaluated after the reference changed",
    )
    result = client.get("/monitoring/drift/history/churn").json()["results"][0]
    # Only rows counted on the new reference, which they resemble: no dataset drift.
    assert result["n_rows"] == 520 and not result["dataset_drift"]
