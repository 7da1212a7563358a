"""The catalogue over REST (`/models`) and the Open Inference Protocol (`/v2`), with a user's own
model registered by upload while the service runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from helpers import sample_records
from mlobs.data import DATASETS

ADMIN = {"X-API-Key": "root-key-1"}


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any, pd.DataFrame]:
    """An XGBoost booster on half of scikit-learn's breast cancer data, and the other half."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    d = tmp_path_factory.mktemp("cancer")
    data = load_breast_cancer(as_frame=True).frame
    train, ref = data.iloc[::2], data.iloc[1::2].reset_index(drop=True)
    cols = [c for c in data.columns if c != "target"]
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(train[cols], label=train["target"]), num_boost_round=20)  # fmt: skip
    booster.save_model(d / "model.ubj")
    ref.to_parquet(d / "reference.parquet")
    return d / "model.ubj", d / "reference.parquet", booster, ref


def _upload(client: TestClient, name: str, artifact: Path, reference: Path, **form: str) -> Any:
    with open(artifact, "rb") as a, open(reference, "rb") as r:
        return client.post(
            "/models",
            data={"name": name, **form},
            files={"artifact": (artifact.name, a), "reference": (reference.name, r)},
            headers=ADMIN,
        )


def test_register_by_upload_serve_it_and_remove_it(
    cancer: tuple[Path, Path, Any, pd.DataFrame], app_factory: Callable[..., TestClient]
) -> None:
    artifact, reference, booster, ref = cancer
    client = app_factory(api_keys="root-key-1:admin")
    denied = client.post("/models", data={"name": "x"}, files={"reference": ("r.csv", b"a\n1\n")})
    assert denied.status_code == 401
    r = _upload(client, "cancer", artifact, reference, target="target")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["loaded"] and body["task"] == "binary_classification"
    assert body["holdout_metrics"]["roc_auc"] > 0.9 and body["artifact_format"] == "xgboost"
    # Served at once by this worker, with its own path and body in the OpenAPI document.
    row = ref.drop(columns="target").iloc[0].to_dict()
    p = client.post("/predict/cancer", json=row)
    assert p.status_code == 200, p.text
    want = float(booster.inplace_predict(ref.drop(columns="target").iloc[:1].to_numpy())[0])
    assert p.json()["probability"] == pytest.approx(want, rel=1e-5)
    assert "/predict/cancer" in client.get("/openapi.json").json()["paths"]
    assert {m["name"] for m in client.get("/models").json()["models"]} >= {"cancer", "fraud"}
    assert client.get("/models/cancer").json()["version"] == body["version"]
    assert client.get("/models/nope").status_code == 404

    gone = client.delete("/models/cancer", headers=ADMIN)
    assert gone.status_code == 200, gone.text
    assert gone.json()["version"] == body["version"]
    assert client.post("/predict/cancer", json=row).status_code == 404
    assert "/predict/cancer" not in client.get("/openapi.json").json()["paths"]
    assert client.delete("/models/cancer", headers=ADMIN).status_code == 404


def test_bad_uploads_are_422_naming_the_field(
    cancer: tuple[Path, Path, Any, pd.DataFrame],
    app_factory: Callable[..., TestClient],
    tmp_path: Path,
) -> None:
    import pickle

    artifact, reference, _, _ = cancer
    client = app_factory(api_keys="root-key-1:admin")
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps({"a": 1}))
    for name, art, form, field in (
        ("cancer", pkl, {"target": "target"}, "artifact"),
        ("Bad Name", artifact, {"target": "target"}, "name"),
        ("cancer", artifact, {"target": "nope"}, "target"),
        ("cancer", artifact, {"target": "target", "task": "clustering"}, "task"),
    ):
        r = _upload(client, name, art, reference, **form)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", field], r.json()
    text = tmp_path / "reference.txt"
    text.write_text("not a table")
    r = _upload(client, "cancer", artifact, text, target="target")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reference"]
    assert client.get("/models/cancer").status_code == 404  # nothing half-registered


def test_an_upload_over_the_limit_is_413(
    cancer: tuple[Path, Path, Any, pd.DataFrame], app_factory: Callable[..., TestClient]
) -> None:
    artifact, reference, _, _ = cancer
    client = app_factory(api_keys="root-key-1:admin", max_upload_bytes=4096)
    r = _upload(client, "cancer", artifact, reference, target="target")
    assert r.status_code == 413
    # The upload limit is the upload route's; other bodies keep MAX_BODY_BYTES.
    assert client.post("/predict/fraud", json=sample_records("fraud", 1)[0]).status_code == 200


def test_v2_inference_matches_predict_and_names_bad_inputs(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory()
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2/models/fraud").json()
    assert [i["name"] for i in meta["inputs"]] == DATASETS["fraud"].feature_names
    assert {o["name"] for o in meta["outputs"]} == {"prediction", "probability"}
    assert client.get("/v2/models/fraud/ready").json() == {"name": "fraud", "ready": True}
    assert client.get("/v2/models/nope").status_code == 404

    rows = sample_records("fraud", 5, seed=4)
    inputs = [
        {"name": f.name, "shape": [5], "datatype": "BYTES" if f.kind == "categorical" else "FP64",
         "data": [r[f.name] for r in rows]}
        for f in DATASETS["fraud"].features
    ]  # fmt: skip
    r = client.post("/v2/models/fraud/infer", json={"id": "req-1", "inputs": inputs})
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    single = [client.post("/predict/fraud", json=row).json()["probability"] for row in rows]
    np.testing.assert_allclose(out["probability"]["data"], single, rtol=1e-9)
    assert out["probability"]["shape"] == [5] and r.json()["id"] == "req-1"
    ids = r.json()["parameters"]["prediction_ids"]
    assert client.get(f"/predictions/{ids[0]}").status_code == 200  # logged like any prediction

    bad = [dict(t) for t in inputs]
    bad[1] = {**bad[1], "data": [1, 2, 99, 4, 5]}  # hour 99 in the third row
    r = client.post("/v2/models/fraud/infer", json={"inputs": bad})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == [
        "body",
        "inputs",
        "hour",
        "data",
        2,
    ]
    r = client.post("/v2/models/fraud/infer", json={"inputs": inputs[1:]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "inputs", "amount"]
    r = client.post("/v2/models/nope/infer", json={"inputs": inputs})
    assert r.status_code == 404


def test_a_request_validated_for_a_replaced_version_is_a_503_to_retry(
    app_factory: Callable[..., TestClient],
) -> None:
    """A body checked against one version's features and predicted by a newer version with
    other features: a 503 the client can send again, never a 500."""
    client = app_factory()
    model = client.app.state.runtime.models.models["fraud"]  # type: ignore[attr-defined]

    def replaced(record: dict[str, Any]) -> Any:
        raise KeyError("new_feature")

    model.predict_record = replaced
    model.predict_records = replaced
    r = client.post("/predict/fraud", json=sample_records("fraud", 1)[0])
    assert r.status_code == 503 and "send the request again" in r.json()["detail"][0]["msg"]
    r = client.post(
        "/predict/batch", json={"model_name": "fraud", "records": sample_records("fraud", 2)}
    )
    assert r.status_code == 503
