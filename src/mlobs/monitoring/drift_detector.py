"""DriftDetector: per-feature drift against a frozen reference, and the dataset verdict.

Numeric features: PSI over the reference's 10 quantile bins. Categorical features: Jensen-Shannon
distance (base 2) over the reference categories plus an "unseen" bucket. A feature is drifted
when its status is ``warning`` or ``critical`` (score >= the warning threshold); ``drift_share``
is drifted features / features with a score, and ``dataset_drift`` is
``drift_share >= drift_share_threshold``. The model's output (prediction drift) is scored the
same way as a numeric feature and reported apart, not counted in the share.

Thresholds. PSI: 0.1 (warning) and 0.2 (critical), the industry's usual reading.
Jensen-Shannon distance: 0.1 (warning) and 0.2 (critical). Why: on 1,000-row windows of an
undrifted categorical with 8 levels, sampling noise gives a JS distance of about 0.03-0.05
(JSD ~ chi2 / (8 n ln 2) with chi2 ~ k - 1), so 0.1 is beyond noise; and a 10-point shift of one
category's share (0.25 -> 0.35) scores about 0.1, the size of change a PSI of 0.1 signals on a
numeric feature. Evidently's default for JS distance is also 0.1.

>>> import pandas as pd, numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], 5000)})
>>> det = DriftDetector().fit(ref)
>>> cur = pd.DataFrame({"x": rng.normal(1.0, 1.0, 2000), "c": rng.choice(["a", "b"], 2000)})
>>> r = det.check(cur)
>>> r.features["x"].status, r.features["c"].status, r.drift_share, r.dataset_drift
('critical', 'ok', 0.5, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlobs.monitoring.profiles import (
    OUTPUT,
    FeatureProfile,
    NumericProfile,
    ReferenceProfile,
)
from mlobs.monitoring.windows import WindowCounts
from mlobs.stats import chi2_test, js_distance, ks_statistic, psi, wasserstein_normalized

Status = Literal["ok", "warning", "critical", "insufficient_data"]
NumericMethod = Literal["psi", "ks", "wasserstein"]
CategoricalMethod = Literal["jensenshannon", "chi2"]
Method = Literal["psi", "ks", "wasserstein", "jensenshannon", "chi2"]

# Default (warning, critical) per optional method. KS: the binned statistic (largest CDF gap).
# Wasserstein: distance over the bins divided by the reference standard deviation (Evidently's
# default bound is 0.1 too). chi2: p-values, so lower is worse; with large windows any p-value
# test flags small, harmless shifts, which is why PSI and JS are the defaults.
OPTIONAL_THRESHOLDS: dict[str, tuple[float, float]] = {
    "ks": (0.1, 0.2),
    "wasserstein": (0.1, 0.2),
    "chi2": (0.05, 0.01),
}


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: method, score, status, and both proportion vectors over the bins."""

    feature: str
    kind: Literal["numeric", "categorical"]
    method: Method
    score: float | None
    status: Status
    bins: list[str]
    reference: list[float]
    current: list[float]
    count: int
    missing_share: float
    reason: str | None = None

    @property
    def drifted(self) -> bool:
        return self.status in ("warning", "critical")

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "method": self.method,
            "score": self.score,
            "status": self.status,
            "drifted": self.drifted,
            "bins": self.bins,
            "reference": self.reference,
            "current": self.current,
            "count": self.count,
            "missing_share": self.missing_share,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DriftReport:
    """The verdict on one window or data set."""

    features: Mapping[str, FeatureDrift]
    drift_share: float
    drifted_features_count: int
    dataset_drift: bool
    n_rows: int
    prediction: FeatureDrift | None
    thresholds: Mapping[str, float]
    model_name: str = ""
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    @property
    def scored_features_count(self) -> int:
        return sum(f.score is not None for f in self.features.values())

    @property
    def status(self) -> Status:
        """Overall: the worst feature status, or insufficient_data when nothing was scored."""
        if self.scored_features_count == 0:
            return "insufficient_data"
        statuses = {f.status for f in self.features.values()}
        for s in ("critical", "warning"):
            if s in statuses:
                return s
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "created_at": self.created_at,
            "n_rows": self.n_rows,
            "status": self.status,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_features_count": self.drifted_features_count,
            "scored_features_count": self.scored_features_count,
            "thresholds": dict(self.thresholds),
            "features": {k: v.to_dict() for k, v in self.features.items()},
            "prediction": self.prediction.to_dict() if self.prediction else None,
        }


class DriftDetector:
    """Drift against a reference fitted once (``fit``) or loaded (``from_profile``).

    Args:
        psi_threshold_warning: PSI at or above which a numeric feature is ``warning``.
        psi_threshold_critical: PSI at or above which it is ``critical``.
        drift_share_threshold: share of drifted features at or above which the data set drifts.
        js_threshold_warning, js_threshold_critical: the same for the Jensen-Shannon distance of
            categorical features (see the module docstring for why 0.1 and 0.2).
        min_samples: a feature with fewer non-missing values gets ``insufficient_data`` and no
            score (an all-missing column included).
        n_bins: quantile bins per numeric feature when fitting.
        numeric_method: ``psi`` (default), ``ks`` or ``wasserstein`` for numeric features.
        categorical_method: ``jensenshannon`` (default) or ``chi2`` for categorical features.
        method_thresholds: (warning, critical) for the optional methods, overriding
            ``OPTIONAL_THRESHOLDS``; for ``chi2`` they are p-values (drift below them).
    """

    def __init__(
        self,
        psi_threshold_warning: float = 0.1,
        psi_threshold_critical: float = 0.2,
        drift_share_threshold: float = 0.3,
        *,
        js_threshold_warning: float = 0.1,
        js_threshold_critical: float = 0.2,
        min_samples: int = 1,
        n_bins: int = 10,
        numeric_method: NumericMethod = "psi",
        categorical_method: CategoricalMethod = "jensenshannon",
        method_thresholds: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        if numeric_method not in ("psi", "ks", "wasserstein"):
            raise ValueError(f"unknown numeric_method {numeric_method!r}")
        if categorical_method not in ("jensenshannon", "chi2"):
            raise ValueError(f"unknown categorical_method {categorical_method!r}")
        self.numeric_method, self.categorical_method = numeric_method, categorical_method
        self.method_thresholds = {**OPTIONAL_THRESHOLDS, **(method_thresholds or {})}
        if not 0 < psi_threshold_warning <= psi_threshold_critical:
            raise ValueError(
                "need 0 < psi_threshold_warning <= psi_threshold_critical, got "
                f"{psi_threshold_warning} and {psi_threshold_critical}"
            )
        if not 0 < js_threshold_warning <= js_threshold_critical <= 1:
            raise ValueError(
                "need 0 < js_threshold_warning <= js_threshold_critical <= 1, got "
                f"{js_threshold_warning} and {js_threshold_critical}"
            )
        if not 0 < drift_share_threshold <= 1:
            raise ValueError(
                f"drift_share_threshold must be in (0, 1], got {drift_share_threshold}"
            )
        if min_samples < 1:
            raise ValueError(f"min_samples must be >= 1, got {min_samples}")
        self.psi_threshold_warning = psi_threshold_warning
        self.psi_threshold_critical = psi_threshold_critical
        self.drift_share_threshold = drift_share_threshold
        self.js_threshold_warning = js_threshold_warning
        self.js_threshold_critical = js_threshold_critical
        self.min_samples = min_samples
        self.n_bins = n_bins
        self.profile: ReferenceProfile | None = None

    @property
    def thresholds(self) -> dict[str, float]:
        return {
            "psi_threshold_warning": self.psi_threshold_warning,
            "psi_threshold_critical": self.psi_threshold_critical,
            "js_threshold_warning": self.js_threshold_warning,
            "js_threshold_critical": self.js_threshold_critical,
            "drift_share_threshold": self.drift_share_threshold,
            "min_samples": float(self.min_samples),
            **{
                f"{m}_threshold_{level}": self.method_thresholds[m][i]
                for m in {self.numeric_method, self.categorical_method} & set(OPTIONAL_THRESHOLDS)
                for i, level in enumerate(("warning", "critical"))
            },
        }

    def fit(
        self,
        reference: pd.DataFrame,
        categorical_features: list[str] | None = None,
        *,
        predictions: np.ndarray | None = None,
        features: Iterable[str] | None = None,
    ) -> DriftDetector:
        """Freeze the reference: bins and proportions per column (and for ``predictions``)."""
        self.profile = ReferenceProfile.build(
            reference,
            categorical_features=categorical_features,
            features=list(features) if features is not None else None,
            output=predictions,
            n_bins=self.n_bins,
        )
        return self

    @classmethod
    def from_profile(cls, profile: ReferenceProfile, **kwargs: Any) -> DriftDetector:
        """A detector over a saved profile; keyword arguments set thresholds."""
        det = cls(**kwargs)
        det.profile = profile
        return det

    def _require_profile(self) -> ReferenceProfile:
        if self.profile is None:
            raise RuntimeError("DriftDetector is not fitted: call fit() or from_profile() first")
        return self.profile

    def check(self, current: pd.DataFrame, predictions: np.ndarray | None = None) -> DriftReport:
        """Drift of ``current`` (the reference's columns) against the reference."""
        profile = self._require_profile()
        return self.evaluate(
            WindowCounts.from_frame(profile, current, predictions, duplicates=False)
        )

    def evaluate(self, window: WindowCounts) -> DriftReport:
        """Drift of a window already counted over the reference's bins (a live window)."""
        profile = self._require_profile()
        features = {
            name: self._feature(p, window.counts[name], window.missing.get(name, 0))
            for name, p in profile.features.items()
        }
        scored = [f for f in features.values() if f.score is not None]
        drifted = sum(f.drifted for f in scored)
        share = drifted / len(scored) if scored else 0.0
        prediction = None
        if profile.output is not None and OUTPUT in window.counts:
            out_counts = window.counts[OUTPUT]
            prediction = self._feature(profile.output, out_counts, 0)
        return DriftReport(
            features=features,
            drift_share=share,
            drifted_features_count=drifted,
            dataset_drift=bool(scored) and share >= self.drift_share_threshold,
            n_rows=window.n_rows,
            prediction=prediction,
            thresholds=self.thresholds,
            model_name=profile.model_name,
        )

    def _feature(self, p: FeatureProfile, counts: np.ndarray, missing: int) -> FeatureDrift:
        n = int(counts.sum())
        total = n + missing
        numeric = isinstance(p, NumericProfile)
        method: Method = self.numeric_method if numeric else self.categorical_method
        base = FeatureDrift(
            feature=p.name,
            kind=p.kind,
            method=method,
            score=None,
            status="insufficient_data",
            bins=p.bin_labels(),
            reference=list(p.proportions),
            current=[],
            count=n,
            missing_share=missing / total if total else 0.0,
        )
        if n < self.min_samples:
            reason = (
                "no non-missing values"
                if n == 0
                else f"{n} non-missing values, fewer than the minimum {self.min_samples}"
            )
            return replace(base, reason=reason)
        ref = np.asarray(p.proportions, dtype=np.float64)
        cur = counts / n
        if method == "chi2":  # a p-value: lower is worse
            score = chi2_test(ref, counts.astype(np.int64))[1]
            warn, crit = self.method_thresholds["chi2"]
            status: Status = "critical" if score < crit else "warning" if score < warn else "ok"
            return replace(base, score=float(score), status=status, current=cur.tolist())
        if method == "psi":
            score = psi(ref, cur)
            warn, crit = self.psi_threshold_warning, self.psi_threshold_critical
        elif method == "jensenshannon":
            score = js_distance(ref, cur)
            warn, crit = self.js_threshold_warning, self.js_threshold_critical
        elif method == "ks":
            score = ks_statistic(ref, cur)
            warn, crit = self.method_thresholds["ks"]
        else:
            assert isinstance(p, NumericProfile)
            score = wasserstein_normalized(ref, cur, p.centers(), p.std) if p.std > 0 else 0.0
            warn, crit = self.method_thresholds["wasserstein"]
        status = "critical" if score >= crit else "warning" if score >= warn else "ok"
        return replace(base, score=float(score), status=status, current=cur.tolist())
