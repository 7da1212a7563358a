"""KServe's payload logger into ``POST /ingest/kserve`` (SQLite and PostgreSQL): request and
response CloudEvents of both protocol versions, in both orders, paired by ``ce-id`` and logged as
predictions of the mapped model; a redelivered pair counted once; an unpaired half dropped and
counted after the bound; bad events a 4xx naming the header or the body; the key in the URL
where keys are enforced, and never in the access log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers import sample_records
from mlobs.api.routes.kserve import RedactKeys
from mlobs.data import DATASETS

FEATURES = DATASETS["churn"].feature_names


def _event(client: TestClient, event_id: str, kind: str, body: Any, service: str = "churn",
           **params: str) -> Any:  # fmt: skip
    return client.post(
        "/ingest/kserve", json=body, params=params,
        headers={"ce-id": event_id, "ce-type": f"org.kubeflow.serving.inference.{kind}",
                 "ce-inferenceservicename": service, "ce-specversion": "1.0",
                 "ce-source": "http://localhost:9081/", "ce-time": "2026-12-07T10:00:00Z"},
    )  # fmt: skip


@pytest.fixture
def kclient(db_url: str, app_factory: Callable[..., TestClient]) -> TestClient:
    return app_factory(database_url=db_url, drift_window_size=100_000)


def _v1(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    request = {"instances": [[r[f] for f in FEATURES] for r in rows]}  # positional rows
    response = {"predictions": [[0.7, 0.3] for _ in rows]}  # class scores [P(0), P(1)]
    return request, response


def _v2(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    request = {"inputs": [{"name": f, "shape": [len(rows)], "datatype": "FP64",
                           "data": [r[f] for r in rows]} for f in FEATURES]}  # fmt: skip
    response = {"model_name": "churn", "outputs": [
        {"name": "predict", "shape": [len(rows)], "datatype": "INT64", "data": [1] * len(rows)}
    ]}  # fmt: skip
    return request, response


@pytest.mark.parametrize("protocol", ["v1", "v2"])
@pytest.mark.parametrize("response_first", [False, True])
def test_a_pair_in_either_order_is_logged_once(
    kclient: TestClient, protocol: str, response_first: bool
) -> None:
    rows = [r for r in sample_records("churn", 3, seed=4) if all(v is not None for v in r.values())]
    request, response = (_v1 if protocol == "v1" else _v2)(rows)
    halves = [("request", request), ("response", response)]
    if response_first:
        halves.reverse()
    first = _event(kclient, "evt-1", *halves[0])
    assert first.status_code == 202 and first.json()["status"] == "waiting", first.text
    second = _event(kclient, "evt-1", *halves[1])
    assert second.status_code == 202, second.text
    out = second.json()
    assert out["status"] == "logged" and out["logged"]["accepted"] == len(rows)
    ids = [f"evt-1:{i}" for i in range(len(rows))] if len(rows) > 1 else ["evt-1"]
    assert out["logged"]["prediction_ids"] == ids
    logged = kclient.get(f"/predictions/{ids[-1]}").json()
    assert logged["features"] == rows[-1]
    assert logged["timestamp"].startswith("2026-12-07T10:00:00")
    if protocol == "v1":
        assert logged["probability"] == 0.3 and logged["prediction"] == 0
    else:
        assert logged["prediction"] == 1 and logged["probability"] is None
    # The logger redelivers both halves: counted once.
    _event(kclient, "evt-1", *halves[0])
    again = _event(kclient, "evt-1", *halves[1]).json()
    assert again["logged"]["accepted"] == 0 and again["logged"]["duplicate"] == len(rows)


def test_an_unpaired_half_is_dropped_and_counted(
    db_url: str, app_factory: Callable[..., TestClient]
) -> None:
    client = app_factory(database_url=db_url, kserve_pair_seconds=0.001)
    request, _ = _v1(sample_records("churn", 1, seed=5))
    assert _event(client, "lonely", "request", request).json()["status"] == "waiting"
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.kserve_halves.waiting() == 1
    # The next event expires it (its wait was far longer than the bound by then).
    _event(client, "other", "request", request)
    assert runtime.kserve_halves.waiting() == 1  # only "other" waits now
    assert runtime.registry.get_sample_value("mlobs_kserve_unpaired_events_total") >= 1


def test_bad_events_are_named(kclient: TestClient) -> None:
    request, response = _v1(sample_records("churn", 1, seed=6))
    r = kclient.post("/ingest/kserve", json=request,
                     headers={"ce-type": "org.kubeflow.serving.inference.request",
                              "ce-inferenceservicename": "churn"})  # fmt: skip
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["header", "ce-id"]
    r = _event(kclient, "e", "reply", request)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["header", "ce-type"]
    r = _event(kclient, "e", "request", [1, 2])  # JSON, but no inference body
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body"]
    r = _event(kclient, "e", "request", request, service="no-such-isvc")
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["header",
                                                                     "ce-inferenceservicename"]  # fmt: skip
    # A shape that claims far more rows than the data holds is not read (nor allocated).
    huge = {"inputs": [{"name": "t", "shape": [200_000_000, 0], "datatype": "FP64", "data": []}]}
    assert _event(kclient, "big", "request", huge).status_code == 202
    r = _event(kclient, "big", "response", {"predictions": [1]})
    assert r.json()["status"] == "rejected" and "shape" in r.json()["error"], r.text
    short = {"instances": [[1.0, 2.0]]}
    assert _event(kclient, "e2", "request", short).status_code == 202
    r = _event(kclient, "e2", "response", response)  # a pair that does not read: counted
    assert r.status_code == 202 and r.json()["status"] == "rejected", r.text
    assert "values" in r.json()["error"]


def test_the_key_rides_in_the_url_and_is_redacted(
    app_factory: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = app_factory(api_keys="logger-key-123:predict", predict_requires_key=True)
    request, _ = _v1(sample_records("churn", 1, seed=7))
    assert _event(client, "k1", "request", request).status_code == 401
    assert _event(client, "k1", "request", request, key="wrong-key-000").status_code == 401
    assert _event(client, "k1", "request", request, key="logger-key-123").status_code == 202
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "POST", "/ingest/kserve?key=logger-key-123&x=1",
                                "1.1", 202), None)  # fmt: skip
    RedactKeys().filter(record)
    assert "logger-key-123" not in record.getMessage()
    assert "key=<redacted>&x=1" in record.getMessage()
