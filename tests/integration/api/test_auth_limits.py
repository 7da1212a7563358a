"""API keys with scopes and the request body limit, through the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from helpers import sample_records
from mlobs.api.app import InsecureConfiguration, create_app
from mlobs.api.auth import KeyPolicy, Unauthorized, parse_keys

ADMIN, LABELLER, PREDICTOR = "admin-key-123456", "labeller-key-1234", "predict-key-12345"
KEYS = f"{ADMIN}:admin,{LABELLER}:feedback,{PREDICTOR}:predict+feedback"


def test_parse_keys_and_scopes() -> None:
    keys = parse_keys(f"{ADMIN}:admin, {LABELLER}:predict+feedback,allscopes-key")
    assert keys[ADMIN] == {"admin"}
    assert keys[LABELLER] == {"predict", "feedback"}
    assert keys["allscopes-key"] == {"predict", "feedback", "admin"}
    assert parse_keys("") == {}
    with pytest.raises(ValueError, match="unknown scopes") as err:
        parse_keys("secret-key-99:root")
    assert "secret-key-99" not in str(err.value)  # a key never appears in a message
    with pytest.raises(ValueError, match="at least 8"):
        parse_keys("short:admin")


def test_policy_checks_scopes() -> None:
    policy = KeyPolicy(parse_keys(KEYS), predict_requires_key=False)
    policy.check("admin", ADMIN)
    policy.check("predict", None)  # open unless PREDICT_REQUIRES_KEY
    with pytest.raises(Unauthorized):
        policy.check("admin", None)
    with pytest.raises(Unauthorized):
        policy.check("admin", ADMIN + "x")
    KeyPolicy().check("admin", None)  # no keys: open


@pytest.fixture
def secured(app_factory: Callable[..., TestClient]) -> TestClient:
    return app_factory(api_keys=KEYS, predict_requires_key=True)


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def test_predictions_need_the_predict_scope_when_required(secured: TestClient) -> None:
    record = sample_records("churn", 1)[0]
    r = secured.post("/predict/churn", json=record)
    assert r.status_code == 401
    assert r.json()["detail"][0]["loc"] == ["header", "X-API-Key"]
    assert (
        secured.post("/predict/churn", json=record, headers=_h("wrong-key-0000")).status_code == 401
    )
    assert secured.post("/predict/churn", json=record, headers=_h(ADMIN)).status_code == 403
    assert secured.post("/predict/churn", json=record, headers=_h(PREDICTOR)).status_code == 200


def test_scopes_guard_labels_and_admin_actions(secured: TestClient) -> None:
    pred = secured.post(
        "/predict/churn", json=sample_records("churn", 1)[0], headers=_h(PREDICTOR)
    ).json()
    body = {"prediction_id": pred["prediction_id"], "actual": 1}
    assert secured.post("/feedback", json=body).status_code == 401
    assert secured.post("/feedback", json=body, headers=_h(ADMIN)).status_code == 403
    assert secured.post("/feedback", json=body, headers=_h(LABELLER)).status_code == 200
    silence = {"model_name": "fraud", "duration_seconds": 60, "created_by": "t", "comment": "c"}
    assert secured.post("/monitoring/silences", json=silence).status_code == 401
    assert (
        secured.post("/monitoring/silences", json=silence, headers=_h(LABELLER)).status_code == 403
    )
    assert secured.post("/monitoring/silences", json=silence, headers=_h(ADMIN)).status_code == 201
    missing = "/monitoring/alerts/00000000-0000-4000-8000-000000000000/acknowledge"
    assert secured.post(missing).status_code == 401
    assert secured.post(missing, headers=_h(ADMIN)).status_code == 404


def test_open_routes_stay_open(secured: TestClient) -> None:
    for path in (
        "/health", "/health/live", "/health/ready", "/metrics", "/monitoring/metrics",
        "/docs", "/openapi.json", "/monitoring/alerts", "/predict/models",
    ):  # fmt: skip
        assert secured.get(path).status_code == 200, path


def test_openapi_documents_the_key_and_the_statuses(secured: TestClient) -> None:
    doc: dict[str, Any] = secured.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    ack = doc["paths"]["/monitoring/alerts/{alert_id}/acknowledge"]["post"]
    assert {"401", "403"} <= set(ack["responses"])
    assert {"401", "403"} <= set(doc["paths"]["/predict/churn"]["post"]["responses"])


def test_the_key_is_never_logged(secured: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        secured.post("/monitoring/silences", json={}, headers=_h(LABELLER))
        secured.post("/monitoring/silences", json={}, headers=_h("leaky-key-987654"))
    assert caplog.records, "refusals are logged"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert LABELLER not in text and "leaky-key-987654" not in text


def test_production_refuses_to_start_open(settings_factory: Callable[..., Any]) -> None:
    with pytest.raises(InsecureConfiguration, match="API_KEYS"):
        create_app(settings_factory(environment="production"))
    create_app(settings_factory(environment="production", allow_open=True))
    create_app(settings_factory(environment="production", api_keys=KEYS))


def test_body_over_the_limit_is_413(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(max_body_bytes=4096)
    records = sample_records("fraud", 40)
    r = client.post("/predict/batch", json={"model_name": "fraud", "records": records})
    assert r.status_code == 413
    assert r.json()["detail"][0]["type"] == "body_too_large"
    assert "4096" in r.json()["detail"][0]["msg"]
    # A body without Content-Length (chunked) is counted as it arrives.
    payload = httpx.Request(
        "POST", "http://x", json={"model_name": "fraud", "records": records}
    ).content

    def chunks() -> Any:
        for i in range(0, len(payload), 1000):
            yield payload[i : i + 1000]

    r = client.post(
        "/predict/batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert (
        client.post(
            "/predict/batch", json={"model_name": "fraud", "records": records[:2]}
        ).status_code
        == 200
    )
