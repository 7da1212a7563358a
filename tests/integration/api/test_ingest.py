"""Predictions made elsewhere, posted to ``POST /models/{name}/predictions`` (SQLite and
PostgreSQL): JSON and NDJSON; a retried batch, a record sent twice, and a batch without ids but
with an ``Idempotency-Key`` counted once; the sender's ids readable and labelled; an id under two
models needs the model named; bad records a 422 naming the record and the field, or skipped
with ``on_error=skip``; nothing counted that the log did not take as new."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from helpers import sample_records


@pytest.fixture
def ingest_client(db_url: str, app_factory: Callable[..., TestClient]) -> TestClient:
    # A large window: the rows counted stay in the open window, where the test reads them.
    return app_factory(database_url=db_url, drift_window_size=100_000)


def _records(n: int, prefix: str | None = "txn", seed: int = 0) -> list[dict[str, Any]]:
    out = []
    for i, features in enumerate(sample_records("churn", n, seed=seed)):
        rec: dict[str, Any] = {"features": features, "prediction": i % 2, "probability": 0.3}
        if prefix is not None:
            rec["prediction_id"] = f"{prefix}-{i}"
        rec["timestamp"] = f"2026-12-0{1 + i % 5}T10:00:00+01:00"
        out.append(rec)
    return out


def _window_rows(client: TestClient, model: str) -> int:
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    rt.drift.flush()
    window = rt.drift.store.open_window(model)
    return 0 if window is None else int(window.n_rows)


def _metric(client: TestClient, outcome: str, model: str = "churn") -> float:
    registry = client.app.state.runtime.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(
        "mlobs_ingested_predictions_total", {"model_name": model, "outcome": outcome}
    )
    return value or 0.0


def test_a_retried_batch_is_logged_and_counted_once(ingest_client: TestClient) -> None:
    client = ingest_client
    batch = {"records": _records(5)}
    first = client.post("/models/churn/predictions", json=batch)
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 5 and first.json()["duplicate"] == 0
    assert first.json()["prediction_ids"] == [f"txn-{i}" for i in range(5)]
    again = client.post("/models/churn/predictions", json=batch)
    assert again.status_code == 202, again.text
    assert (again.json()["accepted"], again.json()["duplicate"]) == (0, 5)
    assert _window_rows(client, "churn") == 5
    assert (_metric(client, "accepted"), _metric(client, "duplicate")) == (5, 5)

    logged = client.get("/predictions/txn-3")
    assert logged.status_code == 200, logged.text
    body = logged.json()
    assert body["features"] == batch["records"][3]["features"]
    assert body["prediction"] == 1 and body["probability"] == 0.3
    assert body["timestamp"].startswith("2026-12-04T09:00:00")  # event time, in UTC


def test_a_record_twice_in_one_batch_counts_once(ingest_client: TestClient) -> None:
    records = _records(3)
    r = ingest_client.post("/models/churn/predictions", json={"records": [*records, records[1]]})
    assert r.status_code == 202, r.text
    assert (r.json()["accepted"], r.json()["duplicate"]) == (3, 1)
    assert _window_rows(ingest_client, "churn") == 3


def test_ndjson_and_a_line_that_is_not_json(ingest_client: TestClient) -> None:
    lines = b"\n".join(orjson.dumps(r) for r in _records(4, prefix="nd"))
    r = ingest_client.post(
        "/models/churn/predictions", content=lines + b"\n",
        headers={"content-type": "application/x-ndjson"},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 4
    bad = ingest_client.post(
        "/models/churn/predictions", content=lines.replace(b"{", b"[", 1) + b"\n{oops",
        headers={"content-type": "application/x-ndjson"},
    )  # fmt: skip
    assert bad.status_code == 422, bad.text
    assert bad.json()["detail"][0]["loc"] == ["body", 0]
    text = ingest_client.post(
        "/models/churn/predictions", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert text.status_code == 422 and text.json()["detail"][0]["loc"] == ["header", "content-type"]


def test_an_idempotency_key_makes_a_batch_without_ids_count_once(ingest_client: TestClient) -> None:
    records = _records(4, prefix=None)
    key = {"Idempotency-Key": "batch-2026-12-07-001"}
    first = ingest_client.post("/models/churn/predictions", json={"records": records}, headers=key)
    again = ingest_client.post("/models/churn/predictions", json={"records": records}, headers=key)
    assert first.json()["accepted"] == 4 and again.json()["duplicate"] == 4
    assert first.json()["prediction_ids"] == again.json()["prediction_ids"]
    # Without ids or a key, records are counted as often as they are sent.
    plain = ingest_client.post("/models/churn/predictions", json={"records": records})
    assert plain.json()["accepted"] == 4
    assert _window_rows(ingest_client, "churn") == 8


def test_bad_records_are_named_and_nothing_is_logged(ingest_client: TestClient) -> None:
    records = _records(6, prefix="bad")
    del records[1]["features"]["tenure_months"]
    records[2]["features"]["monthly_charges"] = "a lot"
    records[3]["timestamp"] = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    records[4]["timestamp"] = "2026-12-01T10:00:00"  # no zone
    records[5]["prediction"] = 2  # not a binary class
    records[4]["probability"] = 3.0  # a second error in the same record: still one rejected
    r = ingest_client.post("/models/churn/predictions", json={"records": records})
    assert r.status_code == 422, r.text
    locs = {tuple(e["loc"]) for e in r.json()["detail"]}
    assert ("body", "records", 1, "features", "tenure_months") in locs
    assert ("body", "records", 2, "features", "monthly_charges") in locs
    assert ("body", "records", 3, "timestamp") in locs
    assert ("body", "records", 4, "timestamp") in locs
    assert ("body", "records", 5, "prediction") in locs
    assert ingest_client.get("/predictions/bad-0").status_code == 404  # the batch was rejected

    skipped = ingest_client.post(
        "/models/churn/predictions", params={"on_error": "skip"}, json={"records": records}
    )
    assert skipped.status_code == 202, skipped.text
    out = skipped.json()
    assert (out["accepted"], out["rejected"]) == (1, 5)
    assert out["prediction_ids"] == ["bad-0", None, None, None, None, None]
    assert {e["index"] for e in out["errors"]} == {1, 2, 3, 4, 5}
    assert _metric(ingest_client, "rejected") == 5
    assert (
        ingest_client.post("/models/nope/predictions", json={"records": records}).status_code == 404
    )


def test_a_regressors_and_a_classifiers_outputs_are_checked(ingest_client: TestClient) -> None:
    price = [{"features": f, "prediction": 250_000.0} for f in sample_records("price", 2)]
    r = ingest_client.post("/models/price/predictions", json={"records": price})
    assert r.status_code == 202 and r.json()["accepted"] == 2
    price[0]["probability"] = 0.4
    r = ingest_client.post("/models/price/predictions", json={"records": price})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "probability"
    # A classifier's prediction follows from its probability and the decision threshold.
    only = [{"prediction_id": "p-1", "features": sample_records("churn", 1)[0], "probability": 0.9}]
    r = ingest_client.post("/models/churn/predictions", json={"records": only})
    assert r.status_code == 202, r.text
    assert ingest_client.get("/predictions/p-1").json()["prediction"] == 1


def test_an_id_under_two_models_needs_the_model(ingest_client: TestClient) -> None:
    client = ingest_client
    churn = [{"prediction_id": "order-7", "features": sample_records("churn", 1)[0],
              "prediction": 1}]  # fmt: skip
    fraud = [{"prediction_id": "order-7", "features": sample_records("fraud", 1)[0],
              "prediction": 0, "probability": 0.1}]  # fmt: skip
    assert client.post("/models/churn/predictions", json={"records": churn}).status_code == 202
    assert client.post("/models/fraud/predictions", json={"records": fraud}).status_code == 202
    both = client.get("/predictions/order-7")
    assert both.status_code == 409, both.text
    assert "churn" in both.text and "fraud" in both.text
    one = client.get("/predictions/order-7", params={"model": "fraud"})
    assert one.status_code == 200 and one.json()["model_name"] == "fraud"

    label = client.post("/feedback", json={"prediction_id": "order-7", "actual": 1})
    assert label.status_code == 409, label.text
    assert label.json()["detail"][0]["loc"] == ["body", "model_name"]
    named = client.post("/feedback", json={"prediction_id": "order-7", "actual": 1,
                                           "model_name": "churn"})  # fmt: skip
    assert named.status_code == 200 and named.json()["status"] == "recorded"
    by_path = client.post("/models/fraud/feedback", json={"prediction_id": "order-7", "actual": 0})
    assert by_path.status_code == 200 and by_path.json()["model_name"] == "fraud"
    again = client.post("/models/fraud/feedback", json={"prediction_id": "order-7", "actual": 0})
    assert again.json()["status"] == "duplicate"
    stored = client.get("/feedback/order-7", params={"model": "churn"})
    assert stored.status_code == 200 and stored.json()["actual"] == 1
    assert client.get("/feedback/order-7").status_code == 409
    missing = client.post("/models/churn/feedback", json={"prediction_id": "order-8", "actual": 1})
    assert missing.status_code == 404 and missing.json()["detail"][0]["loc"] == [
        "body",
        "prediction_id",
    ]
