"""Health, readiness, the model list and the OpenAPI document."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from helpers import eventually, sample_records


def test_health_when_everything_is_up(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "healthy" and body["reasons"] == []
    assert body["database"] == "ok"
    assert set(body["models"]) == {"fraud", "price", "churn"}
    assert all(m["loaded"] and m["version"] for m in body["models"].values())
    assert client.get("/health/live").json() == {"status": "alive", "reasons": []}
    assert client.get("/health/ready").status_code == 200


def test_a_model_whose_artifact_is_missing_degrades_but_stays_ready(
    app_factory: Callable[..., TestClient], model_dir: Path, tmp_path: Path
) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(model_dir / "fraud", partial / "fraud")
    shutil.copytree(model_dir / "churn", partial / "churn")
    (partial / "churn" / "model.skops").unlink()
    client = app_factory(model_dir=partial)
    body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert any("model churn: artifact missing" in r for r in body["reasons"]), body
    assert client.get("/health/ready").status_code == 200
    assert client.post("/predict/fraud", json=sample_records("fraud", 1)[0]).status_code == 200
    r = client.post("/predict/churn", json=sample_records("churn", 1)[0])
    assert r.status_code == 503
    assert r.json()["detail"][0]["type"] == "model_not_loaded"
    listed = {m["name"]: m for m in client.get("/predict/models").json()["models"]}
    assert listed["fraud"]["loaded"] and not listed["churn"]["loaded"]
    assert "artifact missing" in listed["churn"]["error"]
    assert "price" not in listed  # not in this catalogue at all
    assert client.post("/predict/price", json=sample_records("price", 1)[0]).status_code == 404


def test_no_models_is_unhealthy_and_not_ready(
    app_factory: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = app_factory(wait=False, model_dir=tmp_path / "empty")
    ready = client.app.state.runtime.models_ready  # type: ignore[attr-defined]
    eventually(ready.is_set, message="model loading never finished")
    assert client.get("/health").json()["status"] == "unhealthy"
    r = client.get("/health/ready")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"
    assert client.get("/health/live").status_code == 200


def test_model_list_has_versions_metrics_and_schemas(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/predict/models").json()["models"]}
    assert set(models) == {"fraud", "price", "churn"}
    fraud = models["fraud"]
    assert fraud["algorithm"] == "xgboost" and fraud["holdout_metrics"]["roc_auc"] > 0.5
    assert fraud["decision_threshold"] < 0.5
    feats = {f["name"]: f for f in fraud["features"]}
    assert feats["hour"]["integer"] and feats["hour"]["maximum"] == 23
    assert "grocery" in feats["merchant_category"]["categories"]
    assert feats["amount"]["training_range"][0] >= 0
    assert models["price"]["decision_threshold"] is None


def test_openapi_documents_schemas_examples_and_errors(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in ("/predict/fraud", "/predict/price", "/predict/churn", "/predict/batch"):
        op = doc["paths"][path]["post"]
        assert {"200", "422", "503"} <= set(op["responses"]), path
    fraud = doc["components"]["schemas"]["FraudFeatures"]
    assert fraud["additionalProperties"] is False
    assert set(fraud["required"]) == set(fraud["properties"])
    assert fraud["examples"][0]["merchant_category"] == "grocery"
    hour = fraud["properties"]["hour"]["anyOf"][0]
    assert hour["minimum"] == 0 and hour["maximum"] == 23 and hour["multipleOf"] == 1
    assert doc["paths"]["/predictions/{prediction_id}"]["get"]["responses"]["404"]
    assert client.get("/docs").status_code == 200 and client.get("/redoc").status_code == 200


def test_database_away_degrades_but_predictions_are_served_and_reads_say_503(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory(database_url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    body = client.get("/health").json()
    assert body["status"] == "degraded" and body["database"] == "unreachable"
    assert client.get("/health/ready").status_code == 200
    assert client.post("/predict/fraud", json=sample_records("fraud", 1)[0]).status_code == 200
    for path in ("/monitoring/alerts", "/monitoring/silences", "/monitoring/alerts/summary"):
        r = client.get(path)
        assert r.status_code == 503, path
        assert r.json()["detail"][0]["type"] == "unavailable" and r.headers["retry-after"]
