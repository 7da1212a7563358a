"""Label-free performance estimation of a binary classifier from its own probabilities (CBPE).

The idea behind NannyML's confidence-based performance estimation: when ``p_i`` is a *calibrated*
probability that row ``i`` is positive, each row's contribution to the confusion matrix is known in
expectation even without its label. With the model's hard prediction ``d_i`` (0 or 1)::

    E[TP] = sum p_i d_i          E[FP] = sum (1 - p_i) d_i
    E[FN] = sum p_i (1 - d_i)    E[TN] = sum (1 - p_i) (1 - d_i)

and accuracy, precision, recall and F1 follow from these expected counts (ratios of expectations).
The estimate stays right under covariate shift as long as ``P(y = 1 | score)`` does not move, which
holds when the label's relation to the features is unchanged and the model is calibrated where the
traffic now is. It cannot see concept drift.

Calibration: an isotonic map from raw score to probability, fitted on a slice of the training data
(Zadrozny, B. and Elkan, C. (2002), "Transforming classifier scores into accurate multiclass
probability estimates", KDD), and judged by the expected calibration error on other data
(Guo, C. et al. (2017), "On calibration of modern neural networks", ICML).

>>> p = np.array([0.9, 0.8, 0.3, 0.1])
>>> est = estimate_classification_metrics(p, (p >= 0.5).astype(int))
>>> round(est["accuracy"], 4), round(est["precision"], 4), round(est["recall"], 4)
(0.825, 0.85, 0.8095)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mlobs.stats._checks import nonnegative_vector
from mlobs.stats._types import FloatArray

__all__ = [
    "Calibrator",
    "estimate_classification_metrics",
    "expected_calibration_error",
    "expected_roc_auc",
    "fit_calibrator",
]


def _probabilities(values: npt.ArrayLike, name: str) -> FloatArray:
    """``values`` as a validated 1-D float64 vector: non-empty, finite, within [0, 1]."""
    arr = nonnegative_vector(values, name)
    if arr.max() > 1:
        raise ValueError(f"{name} must lie in [0, 1], got [{arr.min()}, {arr.max()}]")
    return arr


def _binary(values: npt.ArrayLike, name: str, n: int) -> FloatArray:
    """``values`` as a 1-D float64 vector of 0s and 1s, of length ``n``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must hold only 0 and 1")
    return arr


def _ratio(num: float, den: float) -> float:
    """``num / den``, and 0 when ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    return num / den if den > 0 else 0.0


# ------------------------------------------------------------------------------ calibration error


def expected_calibration_error(y: npt.ArrayLike, proba: npt.ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error over ``n_bins`` equal-width probability bins on [0, 1]:
    ``sum_b (n_b / n) * |mean(y in b) - mean(proba in b)|``, empty bins contributing nothing.

    A probability of exactly 1 falls in the last bin.

    >>> expected_calibration_error([0, 1, 1, 1], [0.25, 0.25, 0.75, 0.75], n_bins=2)
    0.25

    Raises:
        ValueError: empty or mismatched inputs, probabilities outside [0, 1], labels other than
            0 and 1, ``n_bins`` < 1.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = _probabilities(proba, "proba")
    labels = _binary(y, "y", p.size)
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    gap = np.bincount(bins, weights=labels - p, minlength=n_bins)
    return float(np.abs(gap).sum() / p.size)


# ------------------------------------------------------------------------------ the calibrator


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from raw score to calibrated probability: linear interpolation between the
    knots ``(x[k], y[k])`` of a fitted isotonic regression, constant beyond the first and last
    knot, clipped to [0, 1].

    >>> Calibrator(x=(0.2, 0.6), y=(0.1, 0.5)).apply(np.array([0.0, 0.4, 1.0])).tolist()
    [0.1, 0.30000000000000004, 0.5]
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    method: str = "isotonic"
    _xs: FloatArray = field(init=False, repr=False, compare=False)
    _ys: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        xs = np.asarray(self.x, dtype=np.float64)
        ys = np.asarray(self.y, dtype=np.float64)
        if xs.ndim != 1 or xs.size == 0 or xs.shape != ys.shape:
            raise ValueError(
                f"knots must be two non-empty vectors of one length: {xs.shape}, {ys.shape}"
            )
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
            raise ValueError("knots must be finite")
        if np.any(np.diff(xs) < 0):
            raise ValueError("knot x values must be non-decreasing")
        if np.any(np.diff(ys) < 0):
            raise ValueError("knot y values must be non-decreasing (the map is monotone)")
        if ys[0] < 0 or ys[-1] > 1:
            raise ValueError(f"knot y values must lie in [0, 1], got [{ys[0]}, {ys[-1]}]")
        object.__setattr__(self, "x", tuple(float(v) for v in xs))
        object.__setattr__(self, "y", tuple(float(v) for v in ys))
        object.__setattr__(self, "_xs", xs)
        object.__setattr__(self, "_ys", ys)

    def apply(self, proba: npt.ArrayLike) -> FloatArray:
        """Calibrated probabilities for raw scores ``proba`` (same shape; NaN stays NaN)."""
        out = np.interp(np.asarray(proba, dtype=np.float64), self._xs, self._ys)
        return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form: ``{"method": ..., "x": [...], "y": [...]}``."""
        return {"method": self.method, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibrator:
        """The calibrator ``to_dict`` described.

        Raises:
            ValueError: an unknown method or invalid knots.
        """
        method = str(d.get("method", "isotonic"))
        if method != "isotonic":
            raise ValueError(f"unknown calibration method {method!r}")
        return cls(x=tuple(d["x"]), y=tuple(d["y"]), method=method)


def fit_calibrator(proba: npt.ArrayLike, y: npt.ArrayLike) -> Calibrator:
    """Fit an isotonic (monotone, piecewise linear) map from raw scores ``proba`` to the
    frequency of ``y == 1``, for use on data other than (proba, y).

    Raises:
        ValueError: empty or mismatched inputs, scores outside [0, 1], labels other than 0 and 1.
    """
    from sklearn.isotonic import IsotonicRegression  # only where training happens

    p = _probabilities(proba, "proba")
    labels = _binary(y, "y", p.size)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(p, labels)
    return Calibrator(x=tuple(iso.X_thresholds_), y=tuple(iso.y_thresholds_))


# ------------------------------------------------------------------------------ estimation


def expected_roc_auc(proba: npt.ArrayLike, scores: npt.ArrayLike | None = None) -> float:
    """ROC AUC expected when row ``i`` is positive with probability ``proba[i]``, for the ranking
    by ``scores`` (default: ``proba``).

    As NannyML estimates it: rows are taken in decreasing score, expected true and false positive
    counts are cumulative sums of ``p`` and ``1 - p`` (tied scores taken together), and the area
    under the expected (FPR, TPR) curve is summed by trapezoids. One correction: the trapezoid pairs
    each row with itself (``p_i (1 - p_i) / 2``), a row cannot be both positive and negative, so
    that term is removed from the area and ``sum p_i (1 - p_i)`` from ``E[P] * E[N]``. The result is
    ``E[pairs ranked right] / E[positive-negative pairs]``, and equals the realized AUC when every
    ``p`` is 0 or 1.

    >>> expected_roc_auc(np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.9, 0.8, 0.7, 0.1]))
    0.75

    Returns NaN when no positive-negative pair is expected (fewer than two rows, every ``p`` 0,
    every ``p`` 1, or under 1e-9 expected pairs).
    """
    p = _probabilities(proba, "proba")
    s = p if scores is None else np.asarray(scores, dtype=np.float64)
    if s.shape != p.shape:
        raise ValueError(f"scores must have shape {p.shape}, got {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    order = np.argsort(-s, kind="stable")
    s, p = s[order], p[order]
    # The last row of each group of tied scores closes a point of the curve.
    last = np.append(s[1:] != s[:-1], True)
    tp = np.concatenate([[0.0], np.cumsum(p)[last]])
    fp = np.concatenate([[0.0], np.cumsum(1.0 - p)[last]])
    area = float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2.0))
    self_pairs = float(np.sum(p * (1.0 - p)))
    pairs = tp[-1] * fp[-1] - self_pairs
    # Fewer than 1e-9 expected positive-negative pairs is none (an AUC from, say, one row with
    # p = 1e-12 among certain positives is noise); the relative term absorbs the rounding of
    # E[P] * E[N] - sum p (1 - p) when both are large.
    if pairs <= max(1e-9, 1e-12 * tp[-1] * fp[-1]):
        return float("nan")
    return float(np.clip((area - self_pairs / 2.0) / pairs, 0.0, 1.0))


def estimate_classification_metrics(
    proba_calibrated: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    scores: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """Expected accuracy, precision, recall, F1, ROC AUC and positive rate of hard predictions
    ``y_pred`` (0/1) when row ``i`` is positive with probability ``proba_calibrated[i]``.

    The keys are those of the realized metrics, so estimate and realized value pair by name:
    ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (of the ranking by ``scores``,
    default ``proba_calibrated``; see :func:`expected_roc_auc`), ``positive_rate`` (the expected
    share of positives). A ratio whose denominator is 0 is 0, as scikit-learn's
    ``zero_division=0``; ``roc_auc`` is NaN when it is undefined.

    Raises:
        ValueError: empty or mismatched inputs, probabilities outside [0, 1], predictions other
            than 0 and 1.
    """
    p = _probabilities(proba_calibrated, "proba_calibrated")
    d = _binary(y_pred, "y_pred", p.size)
    tp = float(np.sum(p * d))
    fp = float(np.sum((1.0 - p) * d))
    fn = float(np.sum(p * (1.0 - d)))
    tn = float(np.sum((1.0 - p) * (1.0 - d)))
    return {
        "accuracy": (tp + tn) / p.size,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2.0 * tp, 2.0 * tp + fp + fn),
        "roc_auc": expected_roc_auc(p, scores),
        "positive_rate": (tp + fn) / p.size,
    }
