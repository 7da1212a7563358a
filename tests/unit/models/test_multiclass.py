"""Multiclass classifiers: the figures (known answers and agreement with scikit-learn), class
columns put in the manifest's order, the one-row fast paths equal to the libraries' own output,
and boosters that cannot give one probability per declared class refused."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.datasets import load_wine

from mlobs.models.artifacts import model_from_bytes
from mlobs.models.base import class_columns, multiclass_metrics
from mlobs.models.lightgbm_model import LightGBMModel
from mlobs.models.manifest import ArtifactEntry, FeatureEntry, Manifest
from mlobs.models.xgboost_model import XGBoostModel
from mlobs.monitoring.performance import realized_metrics
from mlobs.monitoring.records import LabelRecord

WINE = load_wine(as_frame=True).frame
COLS = [c for c in WINE.columns if c != "target"]
T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)


def _manifest(fmt: str, classes: list[object] | None = None) -> Manifest:
    return Manifest(
        name="wine", task="multiclass_classification", target="target",
        features=[FeatureEntry(name=c, kind="numeric") for c in COLS],
        class_labels=classes or [0, 1, 2], artifact=ArtifactEntry(format=fmt, file="model"),
    )  # fmt: skip


def test_known_answer() -> None:
    y = np.array([0, 1, 2, 2])
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.6, 0.2, 0.2]])
    m = multiclass_metrics(y, scores)
    assert m["accuracy"] == pytest.approx(0.75)
    # Class 2: precision 1/1, recall 1/2 -> F1 2/3; class 0: precision 1/2, recall 1 -> 2/3.
    assert m["f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert m["log_loss"] == pytest.approx(-(math.log(0.5) + math.log(0.6) + math.log(0.4)
                                            + math.log(0.2)) / 4)  # fmt: skip


@settings(max_examples=50, deadline=None)
@given(st.integers(3, 6), st.integers(5, 60), st.integers(0, 2**32 - 1))
def test_figures_equal_scikit_learns(k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    scores = rng.dirichlet(np.ones(k), n)
    m = multiclass_metrics(y, scores)
    pred = scores.argmax(axis=1)
    labels = list(range(k))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(
        skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)
    )
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, scores, labels=labels))
    assert 0 <= m["accuracy"] <= 1 and m["log_loss"] >= 0


def test_class_columns_follow_the_manifest_and_name_a_mismatch() -> None:
    assert class_columns(["b", "a", "c"], ["a", "b", "c"]) == [1, 0, 2]
    assert class_columns([0.0, 1.0, 2.0], [0, 1, 2]) == [0, 1, 2]  # 1.0 is class 1
    with pytest.raises(ValueError, match=r"missing \['d'\], unknown \['c'\]"):
        class_columns(["a", "b", "c"], ["a", "b", "d"])


def _xgb(objective: str = "multi:softprob", num_class: int = 3) -> bytes:
    booster = xgb.train(
        {"objective": objective, "num_class": num_class, "max_depth": 3, "nthread": 1},
        xgb.DMatrix(WINE[COLS], label=WINE["target"] % num_class), num_boost_round=10,
    )  # fmt: skip
    return bytes(booster.save_raw(raw_format="ubj"))


def test_xgboost_fast_path_equals_the_booster() -> None:
    model = model_from_bytes(_manifest("xgboost"), None, _xgb())
    assert isinstance(model, XGBoostModel)
    x = model._require_schema().transform(WINE[COLS])
    np.testing.assert_allclose(model._raw_predict(x[:1]), model.booster_predict(x[:1]), atol=1e-6)
    np.testing.assert_allclose(model._raw_predict(x[:50]), model.booster_predict(x[:50]), atol=1e-6)
    one = model.predict_record(dict(WINE[COLS].iloc[0]))
    assert one.scores is not None and len(one.scores) == 3
    assert one.value == float(np.argmax(one.scores)) and one.probability == max(one.scores)


def test_lightgbm_one_row_path_equals_the_booster() -> None:
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
        lgb.Dataset(WINE[COLS], WINE["target"]), num_boost_round=10,
    )  # fmt: skip
    model = model_from_bytes(_manifest("lightgbm"), None, booster.model_to_string().encode())
    assert isinstance(model, LightGBMModel)
    x = model._require_schema().transform(WINE[COLS].head(5))
    for i in range(5):
        np.testing.assert_array_equal(
            model._raw_predict(x[i : i + 1]), booster.predict(x[i : i + 1])
        )


@pytest.mark.parametrize(
    ("objective", "num_class", "message"),
    [("multi:softmax", 3, "class ids"), ("multi:softprob", 4, "4 classes")],
)
def test_a_booster_without_a_probability_per_class_is_refused(
    objective: str, num_class: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        model_from_bytes(_manifest("xgboost"), None, _xgb(objective, num_class))


def test_realized_figures_without_the_scores_leave_out_log_loss() -> None:
    model = model_from_bytes(_manifest("xgboost"), None, _xgb())

    def label(actual: float, pred: float, scores: list[float] | None) -> LabelRecord:
        return LabelRecord("id", "wine", "v", T0, T0, actual, pred, max(scores or [1.0]), scores)

    with_scores = [label(0, 0, [0.8, 0.1, 0.1]), label(1, 2, [0.2, 0.3, 0.5])]
    m = realized_metrics(model, with_scores)
    assert m["accuracy"] == 0.5 and m["log_loss"] == pytest.approx(-(math.log(0.8)
                                                                     + math.log(0.3)) / 2)  # fmt: skip
    m = realized_metrics(model, [label(0, 0, None), label(1, 2, None)])
    assert m["accuracy"] == 0.5 and "log_loss" not in m
