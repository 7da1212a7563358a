"""Confidence-based performance estimation: calibration error, the isotonic calibrator and the
expected confusion matrix, against hand-computed answers, scikit-learn and simulated labels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from mlobs.stats._types import FloatArray
from mlobs.stats.estimation import (
    Calibrator,
    estimate_classification_metrics,
    expected_calibration_error,
    expected_roc_auc,
    fit_calibrator,
)


def arr(values: list[float]) -> FloatArray:
    return np.array(values, dtype=np.float64)


_proba = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
# Rows of (probability, hard prediction, score); scores from a small set so that ties occur.
_rows = st.lists(st.tuples(_proba, st.integers(0, 1), st.integers(0, 6)), min_size=1, max_size=40)


# ------------------------------------------------------------------------ calibration error


def test_ece_known_answer() -> None:
    # Two bins: [0, 0.5) holds p = 0.25, 0.25 with labels 0, 1 -> |0.5 - 0.25| * 2/5
    #           [0.5, 1] holds p = 0.75, 0.75, 1.0 with labels 1, 1, 0 -> |2/3 - 2.5/3| * 3/5
    # ECE = 0.25 * 0.4 + (1/6) * 0.6 = 0.1 + 0.1 = 0.2
    y, p = arr([0, 1, 1, 1, 0]), arr([0.25, 0.25, 0.75, 0.75, 1.0])
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.2, abs=1e-12)


def test_ece_of_a_constant_forecast_is_its_distance_to_the_base_rate() -> None:
    y = np.array([1, 0, 0, 0] * 25)
    assert expected_calibration_error(y, np.full(100, 0.4)) == pytest.approx(0.15, abs=1e-12)


def test_ece_of_a_calibrated_model_is_near_zero_and_of_a_distorted_one_is_not() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(0.8, 2.0, 200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, p**2) > 0.05  # overconfident in the negative class


@pytest.mark.parametrize(
    ("y", "p", "n_bins", "message"),
    [
        ([], [], 10, "must not be empty"),
        ([0, 1], [0.5], 10, "shape"),
        ([0, 1], [0.5, 1.5], 10, r"\[0, 1\]"),
        ([0, 2], [0.5, 0.5], 10, "only 0 and 1"),
        ([0, 1], [0.5, math.nan], 10, "finite"),
        ([0, 1], [0.5, 0.5], 0, "n_bins"),
    ],
)
def test_ece_rejects_bad_input(y: list[float], p: list[float], n_bins: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(arr(y), arr(p), n_bins=n_bins)


# ------------------------------------------------------------------------ the calibrator


def test_calibrator_interpolates_between_knots_and_is_constant_beyond() -> None:
    cal = Calibrator(x=(0.2, 0.6), y=(0.1, 0.5))
    out = cal.apply(arr([0.0, 0.2, 0.4, 0.6, 1.0]))
    np.testing.assert_allclose(out, [0.1, 0.1, 0.3, 0.5, 0.5])


def test_calibrator_matches_scikit_learns_isotonic_regression() -> None:
    rng = np.random.default_rng(1)
    raw = rng.random(2_000)
    y = (rng.random(raw.size) < raw**2).astype(int)
    cal = fit_calibrator(raw, y)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
    grid = np.linspace(-0.1, 1.1, 501)
    np.testing.assert_allclose(cal.apply(grid), np.clip(iso.predict(grid), 0, 1), atol=1e-12)
    # It learns the distortion: p = raw**2 near the middle (blocks are averages, so loosely).
    assert cal.apply(arr([0.5]))[0] == pytest.approx(0.25, abs=0.08)


def test_calibrator_separates_perfectly_separated_classes() -> None:
    cal = fit_calibrator(arr([0.1, 0.2, 0.3, 0.7, 0.8]), arr([0, 0, 0, 1, 1]))
    np.testing.assert_array_equal(cal.apply(arr([0.0, 0.15, 0.3, 0.7, 0.95])), [0, 0, 0, 1, 1])


@settings(max_examples=100, deadline=None)
@given(
    data=st.lists(st.tuples(_proba, st.integers(0, 1)), min_size=1, max_size=60),
    queries=st.lists(st.floats(min_value=-1.0, max_value=2.0, allow_nan=False), max_size=30),
)
def test_calibrator_is_monotone_within_unit_interval_and_round_trips(
    data: list[tuple[float, int]], queries: list[float]
) -> None:
    raw, y = (arr([r for r, _ in data]), arr([float(c) for _, c in data]))
    cal = fit_calibrator(raw, y)
    out = cal.apply(np.sort(arr(queries)))
    assert np.all((out >= 0) & (out <= 1))
    assert np.all(np.diff(out) >= 0)
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    np.testing.assert_array_equal(again.apply(raw), cal.apply(raw))


def test_calibrator_to_dict_is_plain_json() -> None:
    d = Calibrator(x=(0.0, 1.0), y=(0.2, 0.9)).to_dict()
    assert d == {"method": "isotonic", "x": [0.0, 1.0], "y": [0.2, 0.9]}


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({"method": "platt", "x": [0.0], "y": [0.5]}, "unknown calibration method"),
        ({"x": [], "y": []}, "non-empty"),
        ({"x": [0.0, 1.0], "y": [0.5]}, "one length"),
        ({"x": [1.0, 0.0], "y": [0.2, 0.4]}, "x values must be non-decreasing"),
        ({"x": [0.0, 1.0], "y": [0.4, 0.2]}, "monotone"),
        ({"x": [0.0, 1.0], "y": [0.2, 1.4]}, r"\[0, 1\]"),
        ({"x": [0.0, math.inf], "y": [0.2, 0.4]}, "finite"),
    ],
)
def test_calibrator_rejects_invalid_knots(d: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Calibrator.from_dict(d)


# ------------------------------------------------------------------------ estimation


def test_estimate_known_answer() -> None:
    # p = [0.9, 0.8, 0.3, 0.1], predictions [1, 1, 0, 0]:
    #   TP = 0.9 + 0.8 = 1.7   FP = 0.1 + 0.2 = 0.3   FN = 0.3 + 0.1 = 0.4   TN = 0.7 + 0.9 = 1.6
    #   accuracy 3.3 / 4, precision 1.7 / 2, recall 1.7 / 2.1, F1 3.4 / (3.4 + 0.7)
    # AUC by pairs (i ranked above j): sum p_i (1 - p_j) over i above j =
    #   0.9 * (0.2 + 0.7 + 0.9) + 0.8 * (0.7 + 0.9) + 0.3 * 0.9 = 1.62 + 1.28 + 0.27 = 3.17,
    #   over sum_{i != j} p_i (1 - p_j) = 2.1 * 1.9 - sum p (1 - p) = 3.99 - 0.55 = 3.44
    p = arr([0.9, 0.8, 0.3, 0.1])
    est = estimate_classification_metrics(p, arr([1, 1, 0, 0]))
    assert est["accuracy"] == pytest.approx(0.825)
    assert est["precision"] == pytest.approx(0.85)
    assert est["recall"] == pytest.approx(1.7 / 2.1)
    assert est["f1"] == pytest.approx(3.4 / 4.1)
    assert est["roc_auc"] == pytest.approx(3.17 / 3.44)
    assert est["positive_rate"] == pytest.approx(0.525)


def test_estimated_auc_ranks_by_the_given_scores() -> None:
    p = arr([0.9, 0.1, 0.8, 0.2])
    # Ranked by p itself the order is right; by scores that reverse it, it is wrong.
    assert expected_roc_auc(p) > 0.8
    assert expected_roc_auc(p, scores=1 - p) < 0.2
    # Tied scores rank nothing: 0.5.
    assert expected_roc_auc(p, scores=np.zeros(4)) == pytest.approx(0.5)


def test_zero_denominators() -> None:
    # No predicted positive: precision 0 (scikit-learn's zero_division=0), F1 0.
    est = estimate_classification_metrics(arr([0.3, 0.6]), arr([0, 0]))
    assert est["precision"] == 0.0 and est["recall"] == 0.0 and est["f1"] == 0.0
    assert est["accuracy"] == pytest.approx(0.55)
    # No expected positive: recall 0, AUC undefined.
    est = estimate_classification_metrics(arr([0.0, 0.0]), arr([1, 0]))
    assert est["recall"] == 0.0 and est["precision"] == 0.0
    assert math.isnan(est["roc_auc"])
    # One row: no pair to rank.
    assert math.isnan(estimate_classification_metrics(arr([0.4]), arr([1]))["roc_auc"])


@pytest.mark.parametrize(
    ("p", "pred", "scores", "message"),
    [
        ([], [], None, "must not be empty"),
        ([0.5, 0.5], [1], None, "shape"),
        ([0.5, 0.5], [1, 0.5], None, "only 0 and 1"),
        ([0.5, -0.1], [1, 0], None, "proba_calibrated must be non-negative"),
        ([0.5, 0.5], [1, 0], [0.1], "scores must have shape"),
        ([0.5, 0.5], [1, 0], [0.1, math.nan], "scores must be finite"),
    ],
)
def test_estimate_rejects_bad_input(
    p: list[float], pred: list[float], scores: list[float] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_classification_metrics(
            arr(p), arr(pred), scores=None if scores is None else arr(scores)
        )


@settings(max_examples=200, deadline=None)
@given(rows=_rows)
def test_certain_probabilities_give_the_realized_metrics(
    rows: list[tuple[float, int, int]],
) -> None:
    """When every p is 0 or 1 the labels are known, so the estimate is the realized figure."""
    y = np.array([round(p) for p, _, _ in rows])
    pred = np.array([d for _, d, _ in rows])
    scores = arr([float(s) for _, _, s in rows])
    est = estimate_classification_metrics(y.astype(np.float64), pred, scores=scores)
    assert est["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert est["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert est["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
    assert est["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    if len(np.unique(y)) == 2:
        assert est["roc_auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    else:
        assert math.isnan(est["roc_auc"])


@settings(max_examples=200, deadline=None)
@given(rows=_rows)
def test_estimated_auc_is_the_expected_share_of_pairs_ranked_right(
    rows: list[tuple[float, int, int]],
) -> None:
    """E[pairs ranked right] / E[positive-negative pairs], by brute force over all pairs."""
    p = arr([q for q, _, _ in rows])
    s = arr([float(v) for _, _, v in rows])
    weight = np.outer(p, 1 - p)  # row i positive and row j negative
    np.fill_diagonal(weight, 0.0)
    right = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
    auc = expected_roc_auc(p, scores=s)
    if weight.sum() <= 1e-9:
        assert math.isnan(auc)
    else:
        assert auc == pytest.approx(float((weight * right).sum() / weight.sum()), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(rows=_rows)
def test_estimates_are_within_their_ranges(rows: list[tuple[float, int, int]]) -> None:
    p = arr([q for q, _, _ in rows])
    pred = arr([float(d) for _, d, _ in rows])
    est = estimate_classification_metrics(p, pred)
    for key, value in est.items():
        if not (key == "roc_auc" and math.isnan(value)):  # NaN only when no pair is expected
            assert 0 <= value <= 1, key
    assert est["positive_rate"] == pytest.approx(float(p.mean()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimate_converges_to_the_realized_metrics_under_bernoulli_labels(seed: int) -> None:
    """Labels drawn as Bernoulli(p): realized figures scatter around the estimate by sampling error
    only (about 0.002 for accuracy at this size)."""
    rng = np.random.default_rng(seed)
    n = 100_000
    p = rng.beta(0.7, 1.6, n)
    raw = np.clip(p + rng.normal(0, 0.05, n), 0, 1)  # a model's score: p seen through noise
    pred = (raw >= 0.4).astype(int)
    y = (rng.random(n) < p).astype(int)
    est = estimate_classification_metrics(p, pred, scores=raw)
    assert est["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=0.01)
    assert est["precision"] == pytest.approx(skm.precision_score(y, pred), abs=0.01)
    assert est["recall"] == pytest.approx(skm.recall_score(y, pred), abs=0.01)
    assert est["f1"] == pytest.approx(skm.f1_score(y, pred), abs=0.01)
    assert est["roc_auc"] == pytest.approx(skm.roc_auc_score(y, raw), abs=0.01)
    assert est["positive_rate"] == pytest.approx(y.mean(), abs=0.01)


def test_calibrating_on_one_slice_corrects_the_estimate_on_another() -> None:
    """A distorted score (the true probability squared-rooted: underconfident about negatives)
    misestimates accuracy; an isotonic map fitted on a separate slice repairs it."""
    rng = np.random.default_rng(3)
    p = rng.beta(0.8, 2.5, 60_000)
    y = (rng.random(p.size) < p).astype(int)
    raw = np.sqrt(p)
    cal, new = slice(0, 20_000), slice(20_000, None)
    calibrator = fit_calibrator(raw[cal], y[cal])
    pred = (raw[new] >= 0.6).astype(int)
    realized = skm.accuracy_score(y[new], pred)
    naive = estimate_classification_metrics(raw[new], pred)["accuracy"]
    fixed = estimate_classification_metrics(calibrator.apply(raw[new]), pred)["accuracy"]
    assert abs(naive - realized) > 0.05
    assert fixed == pytest.approx(realized, abs=0.01)
    ece_raw = expected_calibration_error(y[new], raw[new])
    assert expected_calibration_error(y[new], calibrator.apply(raw[new])) < ece_raw
