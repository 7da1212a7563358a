"""Label-free performance estimation on the real models: the calibration recorded at training time,
and the test that can fail: under a covariate shift that moves churn's realized
accuracy at least 0.05 away from its holdout figure, on 5,000 rows, the estimate lies within 0.02
of realized accuracy while the holdout figure misses by at least 0.05.

The churn model is trained here at the product's default size (``DEFAULT_ROWS["churn"]``, 20,000
rows; seed 42 as ``mlobs train-models``), not the 5,000 rows of the session ``model_dir``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from mlobs.data import DriftSpec, generate
from mlobs.data.demo_models import demo_model
from mlobs.data.store import DEFAULT_ROWS
from mlobs.models import RandomForestModel, load_model
from mlobs.models.base import (
    CALIBRATION_SHARE,
    ModelMetadata,
    TrainingResult,
    classification_metrics,
)
from mlobs.stats.estimation import Calibrator, fit_calibrator

SEED = 42

# Customers who stay longer and sign longer contracts (a retention campaign): tenure up one
# standard deviation, two-year contracts three times and one-year contracts twice as likely as
# before. Pure covariate shift (concept 0): labels follow the moved features. Churn falls and the
# model is right more often: realized accuracy rises about 0.09 above the holdout figure.
RETENTION_SHIFT = DriftSpec(
    mean_shift={"tenure_months": 1.0},
    category_weights={"contract_type": {"two_year": 3.0, "one_year": 2.0}},
)


@pytest.fixture(scope="module")
def churn() -> tuple[RandomForestModel, TrainingResult]:
    model = demo_model("churn")
    result = model.fit(generate("churn", DEFAULT_ROWS["churn"], seed=SEED), seed=SEED)
    return model, result


def _standard_error(share: float, count: float) -> float:
    """Sampling error of a proportion ``share`` observed over ``count`` rows."""
    return math.sqrt(share * (1 - share) / max(count, 1.0))


# ------------------------------------------------------------------------ the test that can fail


@pytest.mark.parametrize("data_seed", [101, 102, 103])
def test_estimate_tracks_accuracy_under_covariate_shift_where_the_holdout_figure_does_not(
    churn: tuple[RandomForestModel, TrainingResult], data_seed: int
) -> None:
    model, result = churn
    meta = result.metadata
    shifted = generate("churn", 5_000, seed=data_seed, drift=RETENTION_SHIFT)
    raw = model.predict_frame(shifted).probabilities
    assert raw is not None
    y = shifted[model.spec.target].to_numpy()
    realized = classification_metrics(y, raw, meta.decision_threshold)
    estimate = model.estimate_performance(raw)
    holdout = meta.holdout_metrics["accuracy"]

    # The shift does move accuracy: without this the test could pass vacuously.
    assert abs(holdout - realized["accuracy"]) >= 0.05
    # The bound.
    assert abs(estimate["accuracy"] - realized["accuracy"]) <= 0.02
    # The other figures, within their own sampling error (few predicted positives under this
    # shift, so precision scatters most), plus 0.01 for the estimate's bias.
    n_pred_pos = float((raw >= meta.decision_threshold).sum())
    n_pos = float(y.sum())
    prec, rec = realized["precision"], realized["recall"]
    assert abs(estimate["precision"] - prec) <= 3 * _standard_error(prec, n_pred_pos) + 0.01
    assert abs(estimate["recall"] - rec) <= 3 * _standard_error(rec, n_pos) + 0.01
    assert abs(estimate["f1"] - realized["f1"]) <= 0.06
    assert abs(estimate["roc_auc"] - realized["roc_auc"]) <= 0.03


def test_without_shift_the_estimate_agrees_with_the_holdout_figure(
    churn: tuple[RandomForestModel, TrainingResult],
) -> None:
    model, result = churn
    fresh = generate("churn", 5_000, seed=201)
    raw = model.predict_frame(fresh).probabilities
    assert raw is not None
    realized = classification_metrics(
        fresh[model.spec.target].to_numpy(), raw, result.metadata.decision_threshold
    )
    estimate = model.estimate_performance(raw)
    assert abs(estimate["accuracy"] - realized["accuracy"]) <= 0.02
    assert abs(estimate["accuracy"] - result.metadata.holdout_metrics["accuracy"]) <= 0.02


# ------------------------------------------------------------------------ calibration at training


def _check_decision(meta: ModelMetadata) -> None:
    ece = meta.calibration_ece
    assert set(ece) == {"raw", "calibrated"}
    assert all(0 <= v <= 1 for v in ece.values())
    # Kept only when it lowers the calibration error on the holdout.
    assert (meta.calibration is not None) == (ece["calibrated"] < ece["raw"])


def test_churn_calibrator_is_fitted_on_its_own_slice_and_judged_on_the_holdout(
    churn: tuple[RandomForestModel, TrainingResult],
) -> None:
    model, result = churn
    meta = result.metadata
    _check_decision(meta)
    # A random forest's averaged votes are underconfident; isotonic calibration helps here.
    assert meta.calibration is not None
    # The calibrator is the isotonic fit on the calibration slice of the training split (the same
    # split ``fit`` draws), a slice disjoint from the holdout that judged it.
    target = model.spec.target
    _, cal = train_test_split(
        result.train, test_size=CALIBRATION_SHARE, random_state=SEED, stratify=result.train[target]
    )
    assert not set(cal.index) & set(result.holdout.index)
    cal_raw = model.predict_frame(cal).probabilities
    assert cal_raw is not None
    expected = fit_calibrator(cal_raw, cal[target].to_numpy()).to_dict()
    assert meta.calibration == expected
    # calibrate() applies it.
    raw = np.linspace(0, 1, 11)
    np.testing.assert_array_equal(model.calibrate(raw), Calibrator.from_dict(expected).apply(raw))


def test_fraud_records_its_calibration_decision_and_saves_it(model_dir: Path) -> None:
    fraud = load_model(model_dir, "fraud")
    assert fraud.metadata is not None
    _check_decision(fraud.metadata)
    raw = np.linspace(0, 1, 101)
    if fraud.metadata.calibration is None:
        np.testing.assert_array_equal(fraud.calibrate(raw), raw)
    else:
        np.testing.assert_array_equal(
            fraud.calibrate(raw), Calibrator.from_dict(fraud.metadata.calibration).apply(raw)
        )
    est = fraud.estimate_performance(raw)
    assert set(est) >= {"accuracy", "precision", "recall", "f1", "roc_auc"}


def test_the_regressor_has_no_calibration(model_dir: Path) -> None:
    price = load_model(model_dir, "price")
    assert price.metadata is not None
    assert price.metadata.calibration is None and price.metadata.calibration_ece == {}
    with pytest.raises(TypeError, match="regressor"):
        price.estimate_performance(np.array([0.5]))


def test_metadata_written_before_calibration_still_loads(
    churn: tuple[RandomForestModel, TrainingResult],
) -> None:
    model, result = churn
    old: Mapping[str, object] = {
        k: v
        for k, v in result.metadata.to_dict().items()
        if k not in ("calibration", "calibration_ece")
    }
    meta = ModelMetadata.from_dict(old)
    assert meta.calibration is None and meta.calibration_ece == {}
    assert ModelMetadata.from_dict(result.metadata.to_dict()) == result.metadata
    uncalibrated = demo_model("churn")
    uncalibrated.metadata = dataclasses.replace(result.metadata, calibration=None)
    raw = np.array([0.1, 0.5, 0.9])
    np.testing.assert_array_equal(uncalibrated.calibrate(raw), raw)
