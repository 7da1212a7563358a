"""The prediction API on SQLite and PostgreSQL: responses, the log, metrics and bad input."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from helpers import sample_records
from mlobs.data import DATASETS
from mlobs.storage.tables import predictions

MODELS = ["fraud", "price", "churn"]


def _metric(client: TestClient, name: str, labels: dict[str, str]) -> float:
    value = client.app.state.runtime.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return float(value or 0.0)


@pytest.mark.parametrize("name", MODELS)
def test_predict_returns_a_logged_prediction(client: TestClient, name: str) -> None:
    record = sample_records(name, 1, seed=1)[0]
    r = client.post(f"/predict/{name}", json=record)
    assert r.status_code == 200, r.text
    body = r.json()
    uuid.UUID(body["prediction_id"])
    assert body["model_name"] == name
    assert body["model_version"] == client.get("/health").json()["models"][name]["version"]
    if DATASETS[name].task == "binary_classification":
        assert body["prediction"] in (0, 1) and 0.0 <= body["probability"] <= 1.0
    else:
        assert body["prediction"] > 0 and body["probability"] is None
    # Readable at once (still queued or already written), with the features it was made from.
    logged = client.get(f"/predictions/{body['prediction_id']}")
    assert logged.status_code == 200
    got = logged.json()
    assert got["prediction"] == body["prediction"] and got["model_name"] == name
    assert got["features"] == {
        k: (float(v) if isinstance(v, int) else v) for k, v in record.items()
    }


def test_the_same_record_gives_the_model_output(client: TestClient) -> None:
    record = sample_records("churn", 1, seed=3)[0]
    model = client.app.state.runtime.models.get("churn")  # type: ignore[attr-defined]
    expected = model.predict_record(record)
    body = client.post("/predict/churn", json=record).json()
    assert body["probability"] == pytest.approx(expected.probability, rel=1e-12)


def test_nulls_and_unseen_categories_are_served(client: TestClient) -> None:
    record = sample_records("fraud", 1)[0] | {
        "amount": None,
        "merchant_category": "space_tourism",
        "card_type": None,
    }
    r = client.post("/predict/fraud", json=record)
    assert r.status_code == 200, r.text
    assert 0 <= r.json()["probability"] <= 1


def test_metrics_count_what_was_served(client: TestClient) -> None:
    for record in sample_records("price", 5):
        assert client.post("/predict/price", json=record).status_code == 200
    assert client.post("/predict/price", json={"area_sqm": 1}).status_code == 422
    assert (
        _metric(client, "mlobs_predictions_total", {"model_name": "price", "status": "success"})
        == 5
    )
    assert _metric(client, "mlobs_prediction_latency_seconds_count", {"model_name": "price"}) == 5
    assert _metric(client, "mlobs_prediction_value_count", {"model_name": "price"}) == 5
    text = client.get("/monitoring/metrics").text
    assert 'mlobs_predictions_total{model_name="price",status="success"} 5.0' in text
    assert client.get("/metrics").text.count("mlobs_prediction_latency_seconds_bucket") > 10


def test_batch_returns_one_result_per_record_and_logs_each(client: TestClient) -> None:
    records = sample_records("churn", 50, seed=4)
    r = client.post("/predict/batch", json={"model_name": "churn", "records": records})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 50 and len(body["predictions"]) == 50
    assert len({p["prediction_id"] for p in body["predictions"]}) == 50
    single = client.post("/predict/churn", json=records[7]).json()
    assert body["predictions"][7]["probability"] == pytest.approx(single["probability"], rel=1e-9)
    assert client.get(f"/predictions/{body['predictions'][49]['prediction_id']}").status_code == 200
    assert (
        _metric(client, "mlobs_predictions_total", {"model_name": "churn", "status": "success"})
        == 51
    )


@pytest.mark.parametrize("writer_process", [False, True], ids=["thread", "process"])
def test_logged_equals_served_after_shutdown(
    db_url: str, app_factory: Callable[..., TestClient], writer_process: bool
) -> None:
    """Every served prediction is in the database after a graceful stop, with the inserts in a
    thread of the server and in its writer process (the default of `mlobs serve`)."""
    client = app_factory(database_url=db_url, log_batch_size=7, log_writer_process=writer_process)
    writer = client.app.state.runtime.insert_process  # type: ignore[attr-defined]
    assert (writer is not None) == writer_process
    served = 0
    for name in MODELS:
        for record in sample_records(name, 10, seed=5):
            served += client.post(f"/predict/{name}", json=record).status_code == 200
    r = client.post(
        "/predict/batch", json={"model_name": "fraud", "records": sample_records("fraud", 33)}
    )
    served += r.json()["count"]
    child_pid = writer.pid if writer is not None else None
    client.__exit__(None, None, None)  # lifespan shutdown drains the queue
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
    engine.dispose()
    assert stored == served == 63
    if writer is not None:  # the writer process ended with the server, reaped
        assert writer.pid is None and child_pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(child_pid, 0)


# ------------------------------------------------------------------------------- bad input


def _error_locs(r: Any) -> list[list[Any]]:
    return [e["loc"] for e in r.json()["detail"]]


def test_every_class_of_bad_input_is_a_4xx_naming_the_field(client: TestClient) -> None:
    good = sample_records("fraud", 1)[0]
    cases: list[tuple[dict[str, Any], list[Any], str]] = [
        ({k: v for k, v in good.items() if k != "hour"}, ["body", "hour"], "missing"),
        (good | {"colour": "red"}, ["body", "colour"], "extra_forbidden"),
        (good | {"amount": "12"}, ["body", "amount"], "float_type"),
        (good | {"amount": True}, ["body", "amount"], "float_type"),
        (good | {"amount": -5}, ["body", "amount"], "greater_than_equal"),
        (good | {"hour": 25}, ["body", "hour"], "less_than_equal"),
        (good | {"hour": 3.5}, ["body", "hour"], "value_error"),
        (good | {"channel": 3}, ["body", "channel"], "string_type"),
        (good | {"channel": "x" * 500}, ["body", "channel"], "string_too_long"),
    ]
    for body, loc, kind in cases:
        r = client.post("/predict/fraud", json=body)
        assert r.status_code == 422, (body, r.text)
        detail = r.json()["detail"]
        assert [loc, kind] in [[e["loc"], e["type"]] for e in detail], detail
        assert all(e["msg"] for e in detail)
    # Nothing invalid was counted as served.
    assert (
        _metric(client, "mlobs_predictions_total", {"model_name": "fraud", "status": "success"})
        == 0
    )


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(client: TestClient, literal: str) -> None:
    good = sample_records("price", 1)[0]
    raw = json.dumps(good).replace(f'"area_sqm": {good["area_sqm"]}', f'"area_sqm": {literal}')
    assert literal in raw
    r = client.post("/predict/price", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert ["body", "area_sqm"] in _error_locs(r)


def test_malformed_json_and_wrong_body_shapes(client: TestClient) -> None:
    r = client.post(
        "/predict/churn",
        content=b'{"tenure_months": 3,',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    assert client.post("/predict/churn", json=[1, 2]).status_code == 422
    assert client.post("/predict/churn").status_code == 422


def test_batch_errors_name_the_record_and_reject_the_whole_batch(client: TestClient) -> None:
    records = sample_records("price", 5)
    records[3] = records[3] | {"bedrooms": -1}
    r = client.post("/predict/batch", json={"model_name": "price", "records": records})
    assert r.status_code == 422
    assert _error_locs(r) == [["body", "records", 3, "bedrooms"]]
    assert (
        _metric(client, "mlobs_predictions_total", {"model_name": "price", "status": "success"})
        == 0
    )

    r = client.post("/predict/batch", json={"model_name": "price", "records": []})
    assert r.status_code == 422 and _error_locs(r) == [["body", "records"]]
    r = client.post("/predict/batch", json={"model_name": "weather", "records": records})
    assert r.status_code == 404 and ["body", "model_name"] in _error_locs(r)  # as /predict/weather
    r = client.post("/predict/batch", json={"model_name": "price", "records": records, "x": 1})
    assert r.status_code == 422 and ["body", "x"] in _error_locs(r)


def test_over_limit_batch(db_url: str, app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(database_url=db_url, max_batch_records=4)
    records = sample_records("fraud", 5)
    r = client.post("/predict/batch", json={"model_name": "fraud", "records": records})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "records"]
    assert r.json()["detail"][0]["type"] == "too_long"
    ok = client.post("/predict/batch", json={"model_name": "fraud", "records": records[:4]})
    assert ok.status_code == 200


def test_unknown_and_malformed_prediction_ids(client: TestClient) -> None:
    r = client.get(f"/predictions/{uuid.uuid4()}")
    assert r.status_code == 404 and r.json()["detail"][0]["type"] == "not_found"
    r = client.get("/predictions/not-a-uuid")  # a sender's id, perhaps: not one of ours
    assert r.status_code == 404, r.text
    r = client.get("/predictions/" + "x" * 129)  # longer than any id
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "prediction_id"]
    assert client.post("/predict/weather", json={}).status_code == 404


def test_the_child_processes_are_used_only_where_they_can_reach_the_database(
    settings_factory: Callable[..., Any],
) -> None:
    """A child process cannot see an in-memory SQLite database: the log and the live windows
    stay in threads."""
    from prometheus_client import CollectorRegistry

    from mlobs.api.runtime import Runtime

    cases = (
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("sqlite:///file::memory:?cache=shared&uri=true", False),
        (None, True),  # the default file in DATA_DIR
    )
    for url, expected in cases:
        extra = {"database_url": url} if url else {}
        settings = settings_factory(log_writer_process=True, drift_process=True, **extra)
        rt = Runtime.build(settings, CollectorRegistry())
        assert (rt.insert_process is not None) == expected, url
        assert (rt.window_process is not None) == expected, url
        rt.engine.dispose()
