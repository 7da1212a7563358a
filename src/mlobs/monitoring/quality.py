"""Data quality of a window or a posted batch: missing values, duplicates, values outside the
reference range, unseen categories; each with a status.

Statuses: a share above the warning bound is ``warning``, above the critical bound ``critical``.
Defaults: missing 5% / 10% (the ``data_quality_issue`` alert fires above 10%), duplicate
rows 1% / 5%, outside the reference range 1% / 5%, unseen categories 1% / 5%.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlobs.monitoring.profiles import CategoricalProfile, NumericProfile, ReferenceProfile
from mlobs.monitoring.windows import WindowCounts

QualityStatus = Literal["ok", "warning", "critical"]


@dataclass(frozen=True)
class Bounds:
    warning: float
    critical: float

    def status(self, share: float) -> QualityStatus:
        return "critical" if share > self.critical else "warning" if share > self.warning else "ok"


@dataclass(frozen=True)
class QualityThresholds:
    missing: Bounds = field(default_factory=lambda: Bounds(0.05, 0.10))
    duplicates: Bounds = field(default_factory=lambda: Bounds(0.01, 0.05))
    out_of_range: Bounds = field(default_factory=lambda: Bounds(0.01, 0.05))
    unseen: Bounds = field(default_factory=lambda: Bounds(0.01, 0.05))


@dataclass(frozen=True)
class FeatureQuality:
    feature: str
    missing_share: float
    status: QualityStatus
    out_of_range_share: float | None = None
    unseen_share: float | None = None
    reference_missing_share: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "missing_share": self.missing_share,
            "reference_missing_share": self.reference_missing_share,
            "out_of_range_share": self.out_of_range_share,
            "unseen_share": self.unseen_share,
            "status": self.status,
        }


@dataclass(frozen=True)
class QualityReport:
    n_rows: int
    missing_share: float
    missing_status: QualityStatus
    duplicate_rows: int
    duplicate_status: QualityStatus
    features: dict[str, FeatureQuality]
    model_name: str = ""

    @property
    def status(self) -> QualityStatus:
        statuses = {self.missing_status, self.duplicate_status}
        statuses |= {f.status for f in self.features.values()}
        return (
            "critical" if "critical" in statuses else "warning" if "warning" in statuses else "ok"
        )

    @property
    def max_feature_missing_share(self) -> float:
        return max((f.missing_share for f in self.features.values()), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "n_rows": self.n_rows,
            "status": self.status,
            "missing_share": self.missing_share,
            "missing_status": self.missing_status,
            "duplicate_rows": self.duplicate_rows,
            "duplicate_share": self.duplicate_rows / self.n_rows if self.n_rows else 0.0,
            "duplicate_status": self.duplicate_status,
            "features": {k: v.to_dict() for k, v in self.features.items()},
        }


def assess(
    profile: ReferenceProfile,
    window: WindowCounts,
    thresholds: QualityThresholds | None = None,
) -> QualityReport:
    """The quality of a counted window against the reference."""
    t = thresholds or QualityThresholds()
    features: dict[str, FeatureQuality] = {}
    cells = missing_cells = 0
    for name, p in profile.features.items():
        counts = window.counts[name]
        n = int(counts.sum())
        missing = window.missing.get(name, 0)
        total = n + missing
        cells += total
        missing_cells += missing
        m_share = missing / total if total else 0.0
        statuses = [t.missing.status(m_share)]
        out_share = unseen_share = None
        if isinstance(p, NumericProfile):
            outside = window.out_of_range.get(name, 0)
            out_share = outside / n if n else 0.0
            statuses.append(t.out_of_range.status(out_share))
        else:
            assert isinstance(p, CategoricalProfile)
            unseen_share = float(counts[-1]) / n if n else 0.0
            statuses.append(t.unseen.status(unseen_share))
        worst: QualityStatus = (
            "critical" if "critical" in statuses else "warning" if "warning" in statuses else "ok"
        )
        features[name] = FeatureQuality(
            feature=name,
            missing_share=m_share,
            status=worst,
            out_of_range_share=out_share,
            unseen_share=unseen_share,
            reference_missing_share=p.missing_share,
        )
    overall_missing = missing_cells / cells if cells else 0.0
    dup_share = window.duplicates / window.n_rows if window.n_rows else 0.0
    return QualityReport(
        n_rows=window.n_rows,
        missing_share=float(overall_missing),
        missing_status=t.missing.status(overall_missing),
        duplicate_rows=int(window.duplicates),
        duplicate_status=t.duplicates.status(dup_share),
        features=features,
        model_name=profile.model_name,
    )
