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
    "FloatArray",
    "IntArray",
    "bin_counts",
    "bin_index",
    "category_counts",
    "chi2_test",
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
