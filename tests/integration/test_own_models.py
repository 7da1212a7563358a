"""Your own model: trained here on data sets that ship with scikit-learn, saved in each accepted
format, registered through the CLI, served with the library's own answer, monitored (drift alert,
realized performance); bad registrations refused with a reason and nothing left behind."""

from __future__ import annotations

import os
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


@dataclass
class Own:
    """A model trained outside mlobs: its files, and the library's own predict."""

    name: str
    reference: Path  # rows the model was not trained on, with the target
    artifact: Path
    target: str
    frame: pd.DataFrame  # the reference rows
    predict: Callable[[pd.DataFrame], np.ndarray]  # probability of class 1, or the value
    categorical: tuple[str, ...] = ()


def _split(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    idx = np.random.default_rng(seed).permutation(len(df))
    half = len(df) // 2
    return df.iloc[idx[:half]].reset_index(drop=True), df.iloc[idx[half:]].reset_index(drop=True)


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Own]:
    import lightgbm as lgb
    import onnxruntime as ort
    import skops.io as sio
    import xgboost as xgb
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    d = tmp_path_factory.mktemp("own")
    out: dict[str, Own] = {}

    cancer = load_breast_cancer(as_frame=True).frame
    train, ref = _split(cancer)
    x_cols = [c for c in cancer.columns if c != "target"]
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(train[x_cols], label=train["target"]), num_boost_round=30,
    )  # fmt: skip
    booster.save_model(d / "cancer.ubj")
    ref.to_parquet(d / "cancer.parquet")
    out["cancer-xgb"] = Own("cancer-xgb", d / "cancer.parquet", d / "cancer.ubj", "target", ref,
                            lambda f: booster.inplace_predict(f[x_cols].to_numpy(float)))  # fmt: skip

    diabetes = load_diabetes(as_frame=True).frame
    train, ref = _split(diabetes)
    d_cols = [c for c in diabetes.columns if c != "target"]
    lgbm = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1},
                     lgb.Dataset(train[d_cols], train["target"]), num_boost_round=40)  # fmt: skip
    lgbm.save_model(d / "diabetes.txt")
    ref.to_csv(d / "diabetes.csv", index=False)
    out["diabetes-lgb"] = Own("diabetes-lgb", d / "diabetes.csv", d / "diabetes.txt", "target", ref,
                              lambda f: lgbm.predict(f[d_cols].to_numpy(float)))  # fmt: skip

    # A pipeline over numeric and categorical columns (a grade derived from the data).
    graded = cancer[["mean radius", "mean texture", "mean smoothness", "target"]].copy()
    graded["grade"] = pd.cut(
        cancer["worst area"], [0, 500, 1000, 1e9], labels=["low", "mid", "high"]
    ).astype(str)
    train, ref = _split(graded)
    cols = ["mean radius", "mean texture", "mean smoothness", "grade"]
    prep = ColumnTransformer([
        ("num", StandardScaler(), cols[:3]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["grade"]),
    ])  # fmt: skip
    pipe = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000))])
    pipe.fit(train[cols], train["target"])
    sio.dump(pipe, d / "graded.skops")
    ref.to_json(d / "graded.jsonl", orient="records", lines=True)
    out["graded-skops"] = Own("graded-skops", d / "graded.jsonl", d / "graded.skops", "target", ref,
                              lambda f: pipe.predict_proba(f[cols])[:, 1])  # fmt: skip

    types = [(c, FloatTensorType([None, 1])) for c in cols[:3]] + [
        ("grade", StringTensorType([None, 1]))
    ]
    onx = to_onnx(pipe, initial_types=types, options={id(pipe.steps[-1][1]): {"zipmap": False}})
    (d / "graded.onnx").write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(str(d / "graded.onnx"), providers=["CPUExecutionProvider"])

    def onnx_predict(f: pd.DataFrame) -> np.ndarray:
        feed = {i.name: (f[[c]].to_numpy(np.float32) if c != "grade" else f[[c]].to_numpy(object))
                for i, c in zip(session.get_inputs(), cols, strict=True)}  # fmt: skip
        return np.asarray(session.run(None, feed)[1])[:, 1]

    ref.to_parquet(d / "graded.parquet")
    out["graded-onnx"] = Own("graded-onnx", d / "graded.parquet", d / "graded.onnx", "target", ref,
                             onnx_predict)  # fmt: skip
    return out


def _register(model_dir: Path, m: Own, *extra: str) -> Any:
    return CliRunner().invoke(
        cli,
        ["register", m.name, "--reference", str(m.reference), "--target", m.target,
         "--artifact", str(m.artifact), *extra],
        env={"MODEL_DIR": str(model_dir), "DATA_DIR": str(model_dir.parent / "data"),
             "COLUMNS": "200", "LOG_LEVEL": "WARNING"},
    )  # fmt: skip


def _records(frame: pd.DataFrame, target: str) -> list[dict[str, Any]]:
    x = frame.drop(columns=[target])
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in x.to_dict("records")]


@pytest.fixture(scope="module")
def registered(own: dict[str, Own], tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("catalogue") / "models"
    for m in own.values():
        result = _register(model_dir, m)
        assert result.exit_code == 0, result.output
        assert f"Registered {m.name}" in result.output
    return model_dir


@pytest.mark.parametrize("name", ["cancer-xgb", "diabetes-lgb", "graded-skops", "graded-onnx"])
def test_a_registered_model_answers_as_its_library_does(
    name: str, own: dict[str, Own], registered: Path, app_factory: Callable[..., TestClient]
) -> None:
    m = own[name]
    client = app_factory(model_dir=registered)
    rows = m.frame.head(40)
    expected = m.predict(rows)
    records = _records(rows, m.target)
    key = "prediction" if name.startswith("diabetes") else "probability"
    for record, want in list(zip(records, expected, strict=True))[:10]:
        r = client.post(f"/predict/{name}", json=record)
        assert r.status_code == 200, r.text
        assert r.json()[key] == pytest.approx(float(want), rel=1e-5, abs=1e-6)
    batch = client.post("/predict/batch", json={"model_name": name, "records": records})
    assert batch.status_code == 200, batch.text
    got = [p[key] for p in batch.json()["predictions"]]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Its own path and body in the OpenAPI document, keyed by the columns as given.
    doc = client.get("/openapi.json").json()
    assert f"/predict/{name}" in doc["paths"]
    props = next(s for k, s in doc["components"]["schemas"].items() if k.endswith("Features") and
                 set(s["properties"]) == set(records[0]))  # fmt: skip
    assert props["examples"][0].keys() == records[0].keys()
    listed = {x["name"]: x for x in client.get("/predict/models").json()["models"]}
    assert listed[name]["loaded"] and listed[name]["version"]


def test_drifted_traffic_raises_an_alert_and_labels_show_realized_performance(
    own: dict[str, Own], registered: Path, app_factory: Callable[..., TestClient], db_url: str
) -> None:
    m = own["cancer-xgb"]
    client = app_factory(
        model_dir=registered, database_url=db_url, drift_window_size=200, drift_min_samples=200,
        drift_flush_interval=0.1, performance_window_size=100,
    )  # fmt: skip
    shifted = m.frame.copy()
    numeric = [c for c in shifted.columns if c != m.target]
    shifted[numeric] = shifted[numeric] * 1.6  # every feature well outside its reference
    records = _records(pd.concat([shifted, shifted]).head(220), m.target)
    r = client.post("/predict/batch", json={"model_name": m.name, "records": records})
    assert r.status_code == 200, r.text
    alerts = eventually(
        lambda: client.get("/monitoring/alerts", params={"model": m.name}).json()["alerts"],
        message="no drift alert for the registered model",
    )
    assert alerts[0]["alert_type"] == "drift_critical"

    # Labels for unshifted predictions: realized figures computed from them.
    clean = _records(m.frame, m.target)[:150]
    preds = client.post("/predict/batch", json={"model_name": m.name, "records": clean}).json()
    items = [{"prediction_id": p["prediction_id"], "actual": int(y)}
             for p, y in zip(preds["predictions"], m.frame[m.target][:150], strict=True)]  # fmt: skip
    assert client.post("/feedback/batch", json={"items": items}).status_code == 200
    client.app.state.runtime.process_labels(full=True)  # type: ignore[attr-defined]
    perf = client.get(f"/monitoring/performance/{m.name}").json()
    assert perf["realized"]["n_labels"] == 100
    assert perf["realized"]["metrics"]["roc_auc"] > 0.9
    assert perf["alert_rule"]["metric"] == "roc_auc"  # the binary default, from the holdout
    assert perf["holdout"]["roc_auc"] > 0.9


def test_a_pickle_is_refused_naming_the_formats(own: dict[str, Own], tmp_path: Path) -> None:
    import pickle

    m = own["graded-skops"]
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps({"not": "a model"}))
    disguised = tmp_path / "model.skops"  # a pickle under an accepted suffix
    disguised.write_bytes(pickle.dumps([1, 2, 3]))
    for path in (pkl, disguised):
        result = _register(
            tmp_path / "models", Own(m.name, m.reference, path, m.target, m.frame, m.predict)
        )
        assert result.exit_code == 2
        assert "is a pickle" in result.output and "skops" in result.output
    assert not (tmp_path / "models").exists() or not os.listdir(tmp_path / "models")


def test_a_skops_file_with_a_type_outside_the_allowlist_is_refused(
    own: dict[str, Own], tmp_path: Path
) -> None:
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    m = own["cancer-xgb"]
    cols = [c for c in m.frame.columns if c != m.target]
    sneaky = Pipeline(
        [
            ("f", FunctionTransformer(np.log1p)),
            ("m", __import__("sklearn.linear_model").linear_model.LogisticRegression()),
        ]
    )
    sneaky.fit(m.frame[cols], m.frame[m.target])
    path = tmp_path / "sneaky.skops"
    sio.dump(sneaky, path)
    result = _register(
        tmp_path / "models", Own("sneaky", m.reference, path, m.target, m.frame, m.predict)
    )
    assert result.exit_code == 2
    assert "FunctionTransformer" in result.output and "allowlist" in result.output
    assert not list((tmp_path / "models").glob("*")) if (tmp_path / "models").exists() else True


def test_bad_registrations_say_why_and_leave_nothing(own: dict[str, Own], tmp_path: Path) -> None:
    m = own["diabetes-lgb"]
    models = tmp_path / "models"

    def fails(*args: str, needle: str, name: str = m.name, reference: Path = m.reference) -> None:
        result = CliRunner().invoke(
            cli, ["register", name, "--reference", str(reference), *args],
            env={"MODEL_DIR": str(models), "COLUMNS": "200", "LOG_LEVEL": "WARNING"},
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert needle in result.output, result.output
        assert not models.exists() or not [p for p in models.iterdir()], list(models.iterdir())

    fails("--target", "target", "--artifact", str(m.artifact), name="Diabetes", needle="invalid")
    fails("--target", "target", "--artifact", str(m.artifact), name="batch", needle="reserved")
    fails("--target", "nope", "--artifact", str(m.artifact), needle="no target column 'nope'")
    lacking = tmp_path / "lacking.csv"
    m.frame.drop(columns=["bmi"]).to_csv(lacking, index=False)
    fails("--target", "target", "--artifact", str(m.artifact), reference=lacking, needle="['bmi']")
    mistyped = tmp_path / "mistyped.csv"
    m.frame.assign(bmi="high").to_csv(mistyped, index=False)
    mixed = "'bmi' holds categories, but the model takes it as a number"
    fails("--target", "target", "--artifact", str(m.artifact), "--categorical", "bmi",
          reference=mistyped, needle=mixed)  # fmt: skip
    declared = tmp_path / "declared.yaml"
    features = "".join(
        f"  - {{name: {c}, kind: numeric}}\n" for c in m.frame.columns if c != "target"
    )
    declared.write_text(
        f"name: diabetes-lgb\ntask: regression\ntarget: target\nfeatures:\n{features}"
    )
    fails("--manifest", str(declared), "--artifact", str(m.artifact), reference=mistyped,
          needle="'bmi' is numeric in the manifest but holds 'high'")  # fmt: skip
    # A booster without column names, trained on three columns: the library's own message.
    import xgboost as xgb

    narrow = xgb.train({"nthread": 1}, xgb.DMatrix(np.random.default_rng(0).random((50, 3)),
                                                   label=np.zeros(50)), num_boost_round=2)  # fmt: skip
    narrow.save_model(tmp_path / "narrow.ubj")
    fails("--target", "target", "--artifact", str(tmp_path / "narrow.ubj"),
          needle="cannot predict its reference")  # fmt: skip
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        "name: diabetes-lgb\ntask: regression\ncolour: blue\nfeatures:\n  - {name: bmi, kind: numeric}\n"
    )
    fails("--manifest", str(manifest), "--artifact", str(m.artifact), needle="colour")
    manifest.write_text(
        "name: diabetes-lgb\ntask: regression\nfeatures:\n  - {name: bmi, kind: number}\n"
    )
    fails("--manifest", str(manifest), needle="features.0.kind")
    fails("--artifact", str(tmp_path / "missing.txt"), "--target", "target", needle="no such file")


def test_a_new_version_replaces_the_old_and_the_old_layout_still_reads(
    own: dict[str, Own], tmp_path: Path, model_dir: Path
) -> None:
    import shutil

    from mlobs.models import ModelRegistry
    from mlobs.models.manifest import Manifest

    m = own["cancer-xgb"]
    models = tmp_path / "models"
    assert _register(models, m).exit_code == 0
    first = Manifest.read(models / m.name / "manifest.yaml")
    again = _register(models, m, "--threshold", "0.3")
    assert again.exit_code == 0 and f"replaces {first.version}" in again.output
    second = Manifest.read(models / m.name / "manifest.yaml")
    assert second.version != first.version and second.decision_threshold == 0.3
    # No temporary folder left (the lock file that orders registrations stays).
    assert sorted(p.name for p in models.iterdir()) == [".lock", m.name]
    # A demo model folder written before manifests existed sits beside it and loads.
    shutil.copytree(model_dir / "price", models / "price")
    (models / "price" / "manifest.yaml").unlink()
    reg = ModelRegistry.load(models)
    assert sorted(reg.models) == [m.name, "price"] and not reg.errors


def test_a_monitor_only_model_is_watched_not_served(
    own: dict[str, Own], tmp_path: Path, app_factory: Callable[..., TestClient]
) -> None:
    """Registered without an artifact: its inputs are profiled and checked; /predict says why it
    cannot answer (404), and the service stays healthy."""
    m = own["diabetes-lgb"]
    models = tmp_path / "models"
    result = CliRunner().invoke(
        cli, ["register", m.name, "--reference", str(m.reference), "--target", m.target],
        env={"MODEL_DIR": str(models), "COLUMNS": "200", "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    assert result.exit_code == 0 and "monitor-only" in result.output, result.output
    client = app_factory(model_dir=models, wait=False)
    eventually(lambda: client.app.state.runtime.models_ready.is_set())  # type: ignore[attr-defined]
    health = client.get("/health").json()
    assert health["models"][m.name]["loaded"] is False
    assert "monitor-only" in health["models"][m.name]["error"]
    assert not any(m.name in r for r in health["reasons"])
    records = _records(m.frame, m.target)
    r = client.post(f"/predict/{m.name}", json=records[0])
    assert r.status_code == 404 and "monitor-only" in r.json()["detail"][0]["msg"]
    shifted = m.frame.assign(bmi=m.frame["bmi"] + 3 * m.frame["bmi"].std())
    check = client.post("/monitoring/drift/check",
                        json={"model_name": m.name, "records": _records(shifted, m.target)})  # fmt: skip
    assert check.status_code == 200, check.text
    assert check.json()["drift"]["features"]["bmi"]["status"] == "critical"
