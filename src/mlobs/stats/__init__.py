"""Pure statistics: numpy and scipy only, no I/O."""

from __future__ import annotations

from mlobs.stats._types import FloatArray, IntArray
from mlobs.stats.binning import (
    bin_counts,
    bin_index,
    category_counts,
    proportions,
    quantile_edges,
)
from mlobs.stats.concept import (
    BernoulliCusum,
    ConceptDriftDetector,
    CusumDetector,
    ResidualCusum,
    detector_for_classifier,
    detector_for_regressor,
    detector_from_state,
)
from mlobs.stats.drift import (
    chi2_test,
    js_distance,
    ks_pvalue,
    ks_statistic,
    psi,
    wasserstein_normalized,
)
from mlobs.stats.quality import duplicate_rows, missing_share, out_of_range_share

__all__ = [
    "BernoulliCusum",
    "ConceptDriftDetector",
    "CusumDetector",
    "FloatArray",
    "IntArray",
    "ResidualCusum",
    "bin_counts",
    "bin_index",
    "category_counts",
    "chi2_test",
    "detector_for_classifier",
    "detector_for_regressor",
    "detector_from_state",
    "duplicate_rows",
    "js_distance",
    "ks_pvalue",
    "ks_statistic",
    "missing_share",
    "out_of_range_share",
    "proportions",
    "psi",
    "quantile_edges",
    "wasserstein_normalized",
]
