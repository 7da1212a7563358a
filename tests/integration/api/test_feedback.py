"""Feedback (late labels) and performance through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn import metrics as skm

from helpers import sample_records
from mlobs.data import DATASETS, generate

# The background loop is slowed right down: these tests drive label processing themselves.
QUIET = {"drift_flush_interval": 3600.0, "performance_estimate_interval": 3600.0}


@pytest.fixture
def fb(db_url: str, app_factory: Callable[..., TestClient]) -> TestClient:
    return app_factory(database_url=db_url, performance_window_size=100, **QUIET)


def _predict(client: TestClient, name: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = client.post("/predict/batch", json={"model_name": name, "records": records})
    assert r.status_code == 200, r.text
    preds: list[dict[str, Any]] = r.json()["predictions"]
    return preds


def _one(client: TestClient, name: str = "churn") -> dict[str, Any]:
    r = client.post(f"/predict/{name}", json=sample_records(name, 1, seed=3)[0])
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _process(client: TestClient) -> None:
    client.app.state.runtime.process_labels(full=True)  # type: ignore[attr-defined]


def _sample(client: TestClient, name: str, **labels: str) -> float | None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    value: float | None = runtime.registry.get_sample_value(name, labels)
    return value


def test_label_is_recorded_once_and_never_overwritten(fb: TestClient) -> None:
    pred = _one(fb)
    body = {"prediction_id": pred["prediction_id"], "actual": 1}
    r = fb.post("/feedback", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "recorded"
    assert out["model_name"] == "churn" and out["actual"] == 1.0
    assert out["prediction"] == pred["prediction"]
    # A retry is safe: same label, counted once.
    assert fb.post("/feedback", json={**body, "actual": True}).json()["status"] == "duplicate"
    assert _sample(fb, "mlobs_labeled_predictions_total", model_name="churn") == 1.0
    # A different label is refused and names the stored one.
    r = fb.post("/feedback", json={**body, "actual": 0})
    assert r.status_code == 409
    assert r.json()["detail"][0]["loc"] == ["body", "actual"]
    assert r.json()["current"] == "1"
    stored = fb.get(f"/feedback/{pred['prediction_id']}")
    assert stored.status_code == 200 and stored.json()["actual"] == 1.0


def test_unknown_prediction_is_404_naming_the_field(fb: TestClient) -> None:
    r = fb.post(
        "/feedback", json={"prediction_id": "00000000-0000-4000-8000-000000000000", "actual": 1}
    )
    assert r.status_code == 404
    assert r.json()["detail"][0]["loc"] == ["body", "prediction_id"]
    assert fb.get("/feedback/00000000-0000-4000-8000-000000000000").status_code == 404


@pytest.mark.parametrize(
    ("model", "actual", "field"),
    [
        ("churn", 2, "actual"),
        ("churn", 0.5, "actual"),
        ("churn", "yes", "actual"),
        ("churn", None, "actual"),
        ("fraud", -1, "actual"),
        ("price", True, "actual"),
        ("price", "250000", "actual"),
    ],
)
def test_label_of_the_wrong_kind_is_422(
    fb: TestClient, model: str, actual: Any, field: str
) -> None:
    pred = _one(fb, model)
    r = fb.post("/feedback", json={"prediction_id": pred["prediction_id"], "actual": actual})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["body", field]
    assert fb.get(f"/feedback/{pred['prediction_id']}").status_code == 404


def test_malformed_bodies_are_4xx(fb: TestClient) -> None:
    pred = _one(fb)
    for body in (
        {"prediction_id": "", "actual": 1},
        {"prediction_id": "x" * 129, "actual": 1},
        {"prediction_id": "line\nbreak", "actual": 1},
        {"actual": 1},
        {"prediction_id": pred["prediction_id"]},
        {"prediction_id": pred["prediction_id"], "actual": 1, "extra": 1},
    ):
        assert fb.post("/feedback", json=body).status_code == 422, body
    nan = f'{{"prediction_id": "{pred["prediction_id"]}", "actual": NaN}}'
    r = fb.post("/feedback", content=nan, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)
    r = fb.post("/feedback", content="{", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)
    assert fb.post("/feedback/batch", json={"items": []}).status_code == 422


def test_batch_is_all_or_nothing(fb: TestClient) -> None:
    preds = _predict(fb, "fraud", sample_records("fraud", 5, seed=1))
    items = [{"prediction_id": p["prediction_id"], "actual": 0} for p in preds]
    bad = [*items[:3], {"prediction_id": "00000000-0000-4000-8000-000000000000", "actual": 0}]
    r = fb.post("/feedback/batch", json={"items": bad})
    assert r.status_code == 404
    assert r.json()["detail"][0]["loc"] == ["body", "items", 3, "prediction_id"]
    assert fb.get(f"/feedback/{preds[0]['prediction_id']}").status_code == 404

    wrong_kind = [*items[:2], {"prediction_id": preds[2]["prediction_id"], "actual": 7}]
    r = fb.post("/feedback/batch", json={"items": wrong_kind})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "items", 2, "actual"]

    r = fb.post("/feedback/batch", json={"items": items})
    assert r.status_code == 200, r.text
    assert (r.json()["recorded"], r.json()["duplicates"]) == (5, 0)
    # A contradicting label in a later batch rejects that whole batch, naming the item.
    clash = [{"prediction_id": p["prediction_id"], "actual": 0} for p in preds[:2]]
    clash.append({"prediction_id": preds[4]["prediction_id"], "actual": 1})
    r = fb.post("/feedback/batch", json={"items": clash})
    assert r.status_code == 409
    assert r.json()["detail"][0]["loc"] == ["body", "items", 2, "actual"]
    # The same labels again: duplicates, nothing counted twice.
    r = fb.post("/feedback/batch", json={"items": items})
    assert (r.json()["recorded"], r.json()["duplicates"]) == (0, 5)
    assert _sample(fb, "mlobs_labeled_predictions_total", model_name="fraud") == 5.0


def test_feedback_for_a_prediction_still_in_the_log_queue(
    db_url: str, app_factory: Callable[..., TestClient]
) -> None:
    client = app_factory(database_url=db_url, log_flush_interval=3600.0, **QUIET)
    pred = _one(client)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.predictions.get(pred["prediction_id"]) is None  # not written yet
    r = client.post("/feedback", json={"prediction_id": pred["prediction_id"], "actual": 0})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "recorded"


def test_realized_performance_matches_sklearn_and_windows_are_kept(fb: TestClient) -> None:
    n = 250  # two windows of 100 and 50 labels in the open one
    df = generate("churn", n, seed=11)
    records = sample_records("churn", n, seed=11)
    preds = _predict(fb, "churn", records)
    y = df["churned"].to_numpy().astype(int)
    items = [
        {"prediction_id": p["prediction_id"], "actual": int(v)}
        for p, v in zip(preds, y, strict=True)
    ]
    assert fb.post("/feedback/batch", json={"items": items}).status_code == 200
    _process(fb)

    r = fb.get("/monitoring/performance/churn")
    assert r.status_code == 200, r.text
    out = r.json()
    pred = np.array([p["prediction"] for p in preds]).astype(int)
    proba = np.array([p["probability"] for p in preds])
    # Realized over the latest window_size (100) labels.
    tail_y, tail_pred, tail_p = y[-100:], pred[-100:], proba[-100:]
    realized = out["realized"]["metrics"]
    assert out["realized"]["n_labels"] == 100
    assert realized["accuracy"] == pytest.approx(skm.accuracy_score(tail_y, tail_pred))
    assert realized["f1"] == pytest.approx(skm.f1_score(tail_y, tail_pred, zero_division=0))
    assert realized["roc_auc"] == pytest.approx(skm.roc_auc_score(tail_y, tail_p))
    assert set(out["estimated"]["metrics"]) >= {"accuracy", "precision", "recall", "f1"}
    assert out["holdout"]["accuracy"] > 0.5
    assert out["labels"] == {
        "total": 250, "window_size": 100, "min_labels": 100, "in_open_window": 50,
        "windows_evaluated": 2,
    }  # fmt: skip
    hist = out["history"]
    assert [h["window_seq"] for h in hist] == [1, 0]
    assert hist[1]["realized"]["accuracy"] == pytest.approx(skm.accuracy_score(y[:100], pred[:100]))
    assert hist[0]["n_rows"] == 100
    assert out["alert_rule"]["metric"] == "accuracy"
    assert out["alert_rule"]["bound"] == pytest.approx(out["holdout"]["accuracy"] - 0.05)
    exported = _sample(
        fb, "mlobs_performance_alert_bound", model_name="churn", metric="accuracy",
        direction="below",
    )  # fmt: skip
    assert exported == pytest.approx(out["alert_rule"]["bound"])
    assert out["concept_drift"]["labels_seen"] == 250
    assert _sample(
        fb, "mlobs_model_performance", model_name="churn", metric="accuracy"
    ) == pytest.approx(realized["accuracy"])
    gap = _sample(fb, "mlobs_performance_estimate_gap", model_name="churn", metric="accuracy")
    assert gap == pytest.approx(out["realized"]["estimate_gap"]["accuracy"])


def test_price_performance_is_regression_metrics(fb: TestClient) -> None:
    n = 120
    df = generate("price", n, seed=5)
    preds = _predict(fb, "price", sample_records("price", n, seed=5))
    y = df["price"].to_numpy()
    items = [
        {"prediction_id": p["prediction_id"], "actual": float(v)}
        for p, v in zip(preds, y, strict=True)
    ]
    assert fb.post("/feedback/batch", json={"items": items}).status_code == 200
    _process(fb)
    out = fb.get("/monitoring/performance/price").json()
    pred = np.array([p["prediction"] for p in preds])
    assert out["realized"]["metrics"]["mae"] == pytest.approx(
        skm.mean_absolute_error(y[-100:], pred[-100:])
    )
    assert out["estimated"] is None
    assert out["alert_rule"] == {
        "metric": "mae", "bound": pytest.approx(out["holdout"]["mae"] * 1.25), "direction": "above"
    }  # fmt: skip


def test_wrong_labels_raise_performance_and_concept_alerts(fb: TestClient) -> None:
    n = 200
    preds = _predict(fb, "churn", sample_records("churn", n, seed=21))
    # Every label contradicts the model: accuracy 0, error rate 1.
    items = [
        {"prediction_id": p["prediction_id"], "actual": 1 - int(p["prediction"])} for p in preds
    ]
    assert fb.post("/feedback/batch", json={"items": items}).status_code == 200
    _process(fb)
    alerts = fb.get("/monitoring/alerts", params={"model": "churn"}).json()["alerts"]
    types = {a["alert_type"]: a for a in alerts}
    assert {"performance_degradation", "concept_drift"} <= set(types)
    perf = types["performance_degradation"]
    assert perf["value"] == 0.0 and perf["status"] == "active"
    assert types["concept_drift"]["status"] == "active"
    assert _sample(fb, "mlobs_concept_drift_detected", model_name="churn") == 1.0
    assert (
        _sample(
            fb,
            "mlobs_alerts_total",
            model_name="churn",
            alert_type="performance_degradation",
            severity="warning",
        )
        == 1.0
    )

    # Then labels that agree with the model: windows without alarms clear both alerts after
    # resolve_after (3) clean windows.
    good = _predict(fb, "churn", sample_records("churn", 300, seed=22))
    items = [{"prediction_id": p["prediction_id"], "actual": int(p["prediction"])} for p in good]
    assert fb.post("/feedback/batch", json={"items": items}).status_code == 200
    _process(fb)
    states = {
        a["alert_type"]: a["status"]
        for a in fb.get("/monitoring/alerts", params={"model": "churn"}).json()["alerts"]
    }
    assert states == {"performance_degradation": "resolved", "concept_drift": "resolved"}


def test_unknown_model_performance_is_404(fb: TestClient) -> None:
    assert fb.get("/monitoring/performance/nope").status_code == 404


def test_a_regressors_label_is_any_finite_number(fb: TestClient) -> None:
    """A regressor's target has no domain of its own: 0 and negative labels are recorded."""
    for actual in (0, -5.0):
        pred = _one(fb, "price")
        r = fb.post("/feedback", json={"prediction_id": pred["prediction_id"], "actual": actual})
        assert r.status_code == 200 and r.json()["actual"] == actual


def test_detector_state_survives_a_restart(
    db_url: str, app_factory: Callable[..., TestClient]
) -> None:
    first = app_factory(database_url=db_url, performance_window_size=100, **QUIET)
    preds = _predict(first, "churn", sample_records("churn", 60, seed=8))
    items = [{"prediction_id": p["prediction_id"], "actual": int(p["prediction"])} for p in preds]
    first.post("/feedback/batch", json={"items": items})
    _process(first)
    before = first.get("/monitoring/performance/churn").json()
    assert before["concept_drift"]["labels_seen"] == 60
    first.__exit__(None, None, None)

    second = app_factory(database_url=db_url, performance_window_size=100, **QUIET)
    preds = _predict(second, "churn", sample_records("churn", 50, seed=9))
    items = [{"prediction_id": p["prediction_id"], "actual": int(p["prediction"])} for p in preds]
    second.post("/feedback/batch", json={"items": items})
    _process(second)
    after = second.get("/monitoring/performance/churn").json()
    assert after["concept_drift"]["labels_seen"] == 110
    assert after["labels"]["total"] == 110
    assert after["labels"]["windows_evaluated"] == 1


def test_openapi_documents_feedback(fb: TestClient) -> None:
    doc = fb.get("/openapi.json").json()
    post = doc["paths"]["/feedback"]["post"]
    assert {"404", "409", "422"} <= set(post["responses"])
    assert "/feedback/batch" in doc["paths"]
    assert "/monitoring/performance/{model_name}" in doc["paths"]
    assert DATASETS["churn"].target == "churned"
