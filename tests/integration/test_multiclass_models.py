"""Multiclass classifiers of your own: the wine data set (three cultivars) in each accepted format,
registered through the CLI and through ``POST /models``; each answers as its library does (the
predicted class's label, every class's probability in the manifest's class order) over
``/predict`` and the Open Inference Protocol; the log keeps labels and scores; class labels as
feedback give realized accuracy, macro F1 and log loss; drifted traffic raises an alert."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from helpers import eventually
from mlobs.cli import app as cli

pytestmark = pytest.mark.slow

# Text labels for the scikit-learn models (their classes_ sort as text), the dataset's 0/1/2
# for the boosters (whose score column j is class j).
CULTIVARS = {0: "barolo", 1: "grignolino", 2: "barbera"}
ADMIN = {"X-API-Key": "root-key-1"}


@dataclass
class Wine:
    name: str
    reference: Path
    artifact: Path
    frame: pd.DataFrame  # reference rows with their target
    classes: list[Any]  # in score order
    scores: Callable[[pd.DataFrame], np.ndarray]  # the library's [N, K], in ``classes`` order


@pytest.fixture(scope="module")
def wines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Wine]:
    import lightgbm as lgb
    import onnxruntime as ort
    import skops.io as sio
    import xgboost as xgb
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    d = tmp_path_factory.mktemp("wine")
    data = load_wine(as_frame=True).frame
    cols = [c for c in data.columns if c != "target"]
    idx = np.random.default_rng(0).permutation(len(data))
    train, ref = data.iloc[idx[:89]], data.iloc[idx[89:]].reset_index(drop=True)
    out: dict[str, Wine] = {}

    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3,
                         "nthread": 1}, xgb.DMatrix(train[cols], label=train["target"]),
                        num_boost_round=20)  # fmt: skip
    booster.save_model(d / "wine.ubj")
    ref.to_parquet(d / "wine.parquet")
    out["wine-xgb"] = Wine("wine-xgb", d / "wine.parquet", d / "wine.ubj", ref, [0, 1, 2],
                           lambda f: booster.inplace_predict(f[cols].to_numpy(float)))  # fmt: skip

    gbm = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
                    lgb.Dataset(train[cols], train["target"]), num_boost_round=30)  # fmt: skip
    gbm.save_model(d / "wine.txt")
    out["wine-lgb"] = Wine("wine-lgb", d / "wine.parquet", d / "wine.txt", ref, [0, 1, 2],
                           lambda f: gbm.predict(f[cols].to_numpy(float)))  # fmt: skip

    named = ref.assign(target=ref["target"].map(CULTIVARS))
    pipe = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))])
    pipe.fit(train[cols], train["target"].map(CULTIVARS))
    sio.dump(pipe, d / "wine.skops")
    named.to_csv(d / "wine-named.csv", index=False)
    text = sorted(CULTIVARS.values())  # scikit-learn's classes_ order
    out["wine-skops"] = Wine("wine-skops", d / "wine-named.csv", d / "wine.skops", named, text,
                             lambda f: pipe.predict_proba(f[cols]))  # fmt: skip

    # skl2onnx's default output: a ZipMap (one {class: probability} per row).
    onx = to_onnx(pipe, initial_types=[("X", FloatTensorType([None, len(cols)]))])
    (d / "wine.onnx").write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(str(d / "wine.onnx"), providers=["CPUExecutionProvider"])

    def onnx_scores(f: pd.DataFrame) -> np.ndarray:
        maps = session.run(None, {"X": f[cols].to_numpy(np.float32)})[1]
        return np.array([[m[c] for c in text] for m in maps])

    out["wine-onnx"] = Wine("wine-onnx", d / "wine-named.csv", d / "wine.onnx", named, text,
                            onnx_scores)  # fmt: skip
    return out


def _register(model_dir: Path, m: Wine) -> Any:
    return CliRunner().invoke(
        cli,
        ["register", m.name, "--reference", str(m.reference), "--target", "target",
         "--artifact", str(m.artifact)],
        env={"MODEL_DIR": str(model_dir), "DATA_DIR": str(model_dir.parent / "data"),
             "COLUMNS": "200", "LOG_LEVEL": "WARNING"},
    )  # fmt: skip


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: float(v) for k, v in r.items()}
        for r in frame.drop(columns=["target"]).to_dict("records")
    ]


@pytest.fixture(scope="module")
def registered(wines: dict[str, Wine], tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("catalogue") / "models"
    for m in wines.values():
        result = _register(model_dir, m)
        assert result.exit_code == 0, result.output
        assert "accuracy=" in result.output and "f1=" in result.output  # holdout figures
    return model_dir


@pytest.mark.parametrize("name", ["wine-xgb", "wine-lgb", "wine-skops", "wine-onnx"])
def test_a_multiclass_model_answers_as_its_library_does(
    name: str, wines: dict[str, Wine], registered: Path, app_factory: Callable[..., TestClient]
) -> None:
    m = wines[name]
    client = app_factory(model_dir=registered)
    info = client.get(f"/models/{name}").json()
    assert info["task"] == "multiclass_classification" and info["class_labels"] == m.classes
    assert info["holdout_metrics"]["accuracy"] > 0.85
    rows = m.frame.head(30)
    want = m.scores(rows)
    records = _records(rows)
    for record, expected in list(zip(records, want, strict=True))[:8]:
        r = client.post(f"/predict/{name}", json=record)
        assert r.status_code == 200, r.text
        body = r.json()
        np.testing.assert_allclose(body["scores"], expected, rtol=1e-5, atol=1e-6)
        assert body["prediction"] == m.classes[int(np.argmax(expected))]
        assert body["probability"] == pytest.approx(float(np.max(expected)), rel=1e-5, abs=1e-6)
        logged = client.get(f"/predictions/{body['prediction_id']}")
        if logged.status_code == 200:  # once the queue has written it
            assert logged.json()["prediction"] == body["prediction"]
    batch = client.post("/predict/batch", json={"model_name": name, "records": records})
    assert batch.status_code == 200, batch.text
    got = np.array([p["scores"] for p in batch.json()["predictions"]])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    # The Open Inference Protocol: labels in `prediction`, [N, K] row-major in `scores`.
    inputs = [{"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
              for c in rows.columns if c != "target"]  # fmt: skip
    v2 = client.post(f"/v2/models/{name}/infer", json={"inputs": inputs})
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["scores"]["shape"] == [len(rows), 3]
    np.testing.assert_allclose(
        np.array(outputs["scores"]["data"]).reshape(len(rows), 3), want, rtol=1e-5, atol=1e-6
    )
    assert outputs["prediction"]["data"] == [m.classes[i] for i in np.argmax(want, axis=1)]
    assert outputs["prediction"]["datatype"] == (
        "INT64" if name.endswith(("xgb", "lgb")) else "BYTES"
    )
    meta = client.get(f"/v2/models/{name}").json()
    assert {"name": "scores", "datatype": "FP64", "shape": [-1, 3]} in meta["outputs"]


def test_class_labels_as_feedback_show_realized_performance_and_drift_raises_an_alert(
    wines: dict[str, Wine], registered: Path, app_factory: Callable[..., TestClient], db_url: str
) -> None:
    m = wines["wine-skops"]
    client = app_factory(
        model_dir=registered, database_url=db_url, drift_window_size=150, drift_min_samples=150,
        drift_flush_interval=0.1, performance_window_size=80, performance_min_labels=50,
    )  # fmt: skip
    rows = pd.concat([m.frame, m.frame]).head(160).reset_index(drop=True)
    preds = client.post("/predict/batch", json={"model_name": m.name, "records": _records(rows)})
    assert preds.status_code == 200, preds.text
    predictions = preds.json()["predictions"]

    # A label that is not one of the classes is a 422 naming the field; nothing stored.
    bad = client.post("/feedback", json={"prediction_id": predictions[0]["prediction_id"],
                                         "actual": "merlot"})  # fmt: skip
    assert bad.status_code == 422, bad.text
    assert bad.json()["detail"][0]["loc"][-1] == "actual"
    assert "barolo" in bad.json()["detail"][0]["msg"]

    items = [{"prediction_id": p["prediction_id"], "actual": y}
             for p, y in zip(predictions[:80], rows["target"][:80], strict=True)]  # fmt: skip
    r = client.post("/feedback/batch", json={"items": items})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["actual"] == rows["target"][0]
    client.app.state.runtime.process_labels(full=True)  # type: ignore[attr-defined]
    perf = client.get(f"/monitoring/performance/{m.name}").json()
    realized = perf["realized"]["metrics"]
    scores = m.scores(rows.head(80))
    truth = np.array([m.classes.index(y) for y in rows["target"][:80]])
    from sklearn import metrics as skm

    assert realized["accuracy"] == pytest.approx(skm.accuracy_score(truth, scores.argmax(axis=1)))
    assert realized["f1"] == pytest.approx(
        skm.f1_score(truth, scores.argmax(axis=1), average="macro"), rel=1e-6
    )
    assert realized["log_loss"] == pytest.approx(skm.log_loss(truth, scores, labels=[0, 1, 2]),
                                                 rel=1e-4)  # fmt: skip
    assert perf["alert_rule"]["metric"] == "accuracy"  # the multiclass default, from the holdout
    stored = client.get(f"/feedback/{items[0]['prediction_id']}").json()
    assert stored["actual"] == items[0]["actual"] and len(stored["scores"]) == 3

    # Every feature well outside its reference: a drift alert for the model.
    shifted = rows.copy()
    features = [c for c in rows.columns if c != "target"]
    shifted[features] = shifted[features] * 1.7
    r = client.post("/predict/batch", json={"model_name": m.name, "records": _records(shifted)})
    assert r.status_code == 200, r.text
    alerts = eventually(
        lambda: client.get("/monitoring/alerts", params={"model": m.name}).json()["alerts"],
        message="no drift alert for the multiclass model",
    )
    assert alerts[0]["alert_type"] == "drift_critical"


def test_a_multiclass_model_registered_over_rest_is_served(
    wines: dict[str, Wine], app_factory: Callable[..., TestClient], tmp_path: Path
) -> None:
    m = wines["wine-lgb"]
    # An empty catalogue serves nothing, so the service does not report ready until the upload.
    client = app_factory(api_keys="root-key-1:admin", model_dir=tmp_path / "models", wait=False)
    with open(m.artifact, "rb") as a, open(m.reference, "rb") as r:
        up = client.post(
            "/models", data={"name": "wine-rest", "target": "target"},
            files={"artifact": (m.artifact.name, a), "reference": (m.reference.name, r)},
            headers=ADMIN,
        )  # fmt: skip
    assert up.status_code in (200, 201), up.text
    assert up.json()["class_labels"] == [0, 1, 2]
    record = _records(m.frame.head(1))[0]
    answer = eventually(
        lambda: (
            (r := client.post("/predict/wine-rest", json=record, headers=ADMIN)).status_code == 200
            and r.json()
        ),
        message="the uploaded model is not served",
    )
    np.testing.assert_allclose(answer["scores"], m.scores(m.frame.head(1))[0], rtol=1e-5)
