"""A model served elsewhere, end to end: registered without its artifact from a reference that
carries the model's own outputs (holdout figures and calibration from them), its traffic posted
to ``/models/{name}/predictions``, labels by the sender's ids, realized and label-free
performance, and a drift alert; output columns that do not fit the task are refused by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from helpers import eventually
from mlobs.cli import app as cli
from mlobs.storage.model_catalog import Registration, RegistrationError, register

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, list[str]]:
    """The breast-cancer reference with a booster's outputs, as the serving side logged them."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    cols = [c for c in data.columns if c != "target"]
    train, ref = data.iloc[::2], data.iloc[1::2].reset_index(drop=True)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
                        xgb.DMatrix(train[cols], label=train["target"]), num_boost_round=30)  # fmt: skip
    proba = booster.inplace_predict(ref[cols])
    ref = ref.assign(score=proba, decision=(proba >= 0.5).astype(int))
    path = tmp_path_factory.mktemp("elsewhere") / "reference.parquet"
    ref.to_parquet(path)
    return path, ref, cols


def _cli(model_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"MODEL_DIR": str(model_dir), "COLUMNS": "200",
                                                    "LOG_LEVEL": "WARNING"})  # fmt: skip


def test_a_model_served_elsewhere_is_monitored_from_its_own_outputs(
    served: tuple[Path, pd.DataFrame, list[str]],
    app_factory: Callable[..., TestClient],
    tmp_path: Path,
    db_url: str,
) -> None:
    path, ref, cols = served
    models = tmp_path / "models"
    result = _cli(models, "register", "cancer", "--reference", str(path), "--target", "target",
                  "--prediction-col", "decision", "--probability-col", "score")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "roc_auc=" in result.output and "monitor-only" in result.output

    client = app_factory(
        model_dir=models, database_url=db_url, wait=False, drift_window_size=200,
        drift_min_samples=200, drift_flush_interval=0.1, performance_window_size=100,
        performance_min_labels=100,
    )  # fmt: skip
    eventually(lambda: client.app.state.runtime.models_ready.is_set())  # type: ignore[attr-defined]
    info = client.get("/models").json()["models"]
    assert [m["task"] for m in info if m["name"] == "cancer"] == ["binary_classification"]

    records = [
        {"prediction_id": f"case-{i}", "features": {c: float(row[c]) for c in cols},
         "prediction": int(row["decision"]), "probability": float(row["score"])}
        for i, row in ref.iterrows()
    ]  # fmt: skip
    r = client.post("/models/cancer/predictions", json={"records": records})
    assert r.status_code == 202 and r.json()["accepted"] == len(records), r.text
    assert client.post("/predict/cancer", json=records[0]["features"]).status_code == 404

    items = [{"prediction_id": f"case-{i}", "actual": int(y)} for i, y in enumerate(ref["target"])]
    r = client.post("/models/cancer/feedback", json=items[0])
    assert r.status_code == 200, r.text
    assert client.post("/feedback/batch", json={"items": items[1:]}).status_code == 200
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    runtime.process_labels(full=True)
    perf = client.get("/monitoring/performance/cancer").json()
    assert perf["realized"]["n_labels"] >= 100
    assert perf["realized"]["metrics"]["roc_auc"] > 0.9
    assert perf["holdout"]["roc_auc"] > 0.9  # from the reference's own outputs
    assert perf["alert_rule"]["metric"] == "roc_auc"
    runtime.performance.estimate(runtime.models.watch("cancer"))
    perf = client.get("/monitoring/performance/cancer").json()
    assert perf["estimated"]["metrics"]["accuracy"] > 0.8  # the label-free estimate

    shifted = [{**rec, "prediction_id": f"late-{i}",
                "features": {c: v * 1.6 for c, v in rec["features"].items()}}
               for i, rec in enumerate(records)]  # fmt: skip
    assert client.post("/models/cancer/predictions", json={"records": shifted}).status_code == 202
    alerts = eventually(
        lambda: client.get("/monitoring/alerts", params={"model": "cancer"}).json()["alerts"],
        message="no drift alert for the model served elsewhere",
    )
    assert alerts[0]["alert_type"] == "drift_critical"


def test_output_columns_that_do_not_fit_are_refused_by_name(
    served: tuple[Path, pd.DataFrame, list[str]], tmp_path: Path
) -> None:
    _, ref, cols = served
    models = tmp_path / "models"

    def refused(field: str, **kwargs: Any) -> str:
        with pytest.raises(RegistrationError) as err:
            register(models, Registration(name="x", reference=ref, target="target", **kwargs))
        assert err.value.field == field, err.value
        assert not (models / "x").exists()
        return str(err.value)

    assert "nope" in refused("reference", probability_col="nope")
    assert "binary" in refused("probability_col", task="regression", probability_col="score")
    assert "multiclass" in refused("score_cols", score_cols=("score", "decision"))
    assert "[0, 1]" in refused("reference", probability_col="mean area")
    assert "0/1" in refused("prediction_col", prediction_col="mean area", probability_col="score")
    assert "target" in refused("prediction_col", prediction_col="target")
    scores = ref.assign(
        a=0.2, b=0.3, c=0.5, label=np.array(["a", "b", "c"])[np.arange(len(ref)) % 3]
    )
    with pytest.raises(RegistrationError, match="one column each"):
        register(models, Registration(name="y", reference=scores, target="label",
                                      score_cols=("a", "b")))  # fmt: skip
    # Multiclass from score columns: holdout figures from them, the output profiled.
    done = register(models, Registration(name="z", reference=scores.drop(columns=["target"]),
                                         target="label", score_cols=("a", "b", "c")))  # fmt: skip
    assert done.metadata.holdout_metrics["accuracy"] == pytest.approx(1 / 3, abs=0.01)
    assert "a" not in [f.name for f in done.manifest.features]
    # A regressor from its prediction column.
    done = register(models, Registration(name="r", reference=ref, target="mean area",
                                         task="regression", prediction_col="mean perimeter"))  # fmt: skip
    assert done.metadata.holdout_metrics["mae"] > 0
