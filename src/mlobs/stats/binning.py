"""Binning frozen on a reference sample, so that any later window can be compared with it.

Numeric columns are cut at reference quantiles (:func:`quantile_edges`); every window is then
counted on the same cut points (:func:`bin_counts`). Categorical columns are counted over the
reference categories plus one "unseen" bucket (:func:`category_counts`). Counts become
proportions with :func:`proportions`; the drift measures in :mod:`mlobs.stats.drift` take either.

>>> edges = quantile_edges(np.arange(100.0), n_bins=4)
>>> [round(float(e), 2) for e in edges]
[24.75, 49.5, 74.25]
>>> bin_counts(np.array([-5.0, 10.0, 30.0, 60.0, 99.0, 500.0, np.nan]), edges).tolist()
[2, 1, 1, 2]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from mlobs.stats._types import FloatArray, IntArray

__all__ = ["bin_counts", "bin_index", "category_counts", "proportions", "quantile_edges"]


def _as_1d_float(values: npt.ArrayLike, name: str) -> FloatArray:
    """``values`` as a 1-D float64 array (no copy when it already is one)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _check_edges(edges: npt.ArrayLike) -> FloatArray:
    """``edges`` as a 1-D float64 array of finite, strictly increasing cut points."""
    arr = _as_1d_float(edges, "edges")
    if not np.all(np.isfinite(arr)):
        raise ValueError("edges must be finite")
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        raise ValueError("edges must be strictly increasing")
    return arr


def quantile_edges(values: FloatArray, n_bins: int = 10) -> FloatArray:
    """Interior cut points for numeric binning, frozen on a reference sample.

    The cut points are the reference quantiles ``Q(k / n_bins)`` for ``k = 1 .. n_bins - 1``
    (``np.quantile``, default linear interpolation, Hyndman & Fan (1996) definition 7), computed
    on the finite values only, then de-duplicated and sorted. A low-cardinality column therefore
    gets fewer cut points, and a constant column none (one bin: bin-based drift measures then
    cannot see it move, use a range check for that). ``len(edges) + 1`` bins result; see
    :func:`bin_index` for how values are assigned to them.

    Args:
        values: Reference sample; NaN and +/-inf are ignored.
        n_bins: Requested number of bins (at least 2); fewer result when quantiles coincide.

    Returns:
        Strictly increasing, finite cut points (possibly empty).

    Raises:
        ValueError: If ``n_bins < 2``, ``values`` is not 1-D or has no finite value.

    >>> quantile_edges(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), n_bins=2).tolist()
    [2.5]
    >>> quantile_edges(np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 3]), n_bins=4).tolist()
    [0.0, 1.0]
    >>> quantile_edges(np.full(5, 7.0)).tolist()
    []
    """
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    arr = _as_1d_float(values, "values")
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise ValueError("values has no finite value to compute quantile edges from")
    if finite.min() == finite.max():  # constant: a single bin
        return np.empty(0, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # interpolating near +/-1.8e308
        qs = np.quantile(finite, np.arange(1, n_bins, dtype=np.float64) / n_bins)
    return np.unique(qs[np.isfinite(qs)]).astype(np.float64, copy=False)


def bin_index(values: FloatArray, edges: FloatArray) -> IntArray:
    """Bin of each value for the given cut points; NaN maps to ``-1``.

    Bins are right-closed: bin 0 is ``(-inf, e_0]``, bin ``i`` is ``(e_{i-1}, e_i]`` and the
    last bin ``len(edges)`` is ``(e_last, +inf)``. Values outside the reference range thus fall
    in the outer bins; -inf goes to bin 0 and +inf to the last bin.

    Args:
        values: Values to bin (1-D).
        edges: Finite, strictly increasing cut points, e.g. from :func:`quantile_edges`.

    Returns:
        Bin indices in ``0 .. len(edges)``, ``-1`` for NaN.

    Raises:
        ValueError: If an input is not 1-D or ``edges`` is not finite and strictly increasing.

    >>> values = np.array([-np.inf, 1.0, 1.5, 2.0, 9.0, np.inf, np.nan])
    >>> bin_index(values, np.array([1.0, 2.0])).tolist()
    [0, 0, 1, 1, 2, 2, -1]
    """
    cuts = _check_edges(edges)
    arr = _as_1d_float(values, "values")
    idx = np.searchsorted(cuts, arr, side="left").astype(np.int64, copy=False)
    idx[np.isnan(arr)] = -1
    return idx


def bin_counts(values: FloatArray, edges: FloatArray) -> IntArray:
    """Number of values in each bin of :func:`bin_index`; NaN is not counted.

    Vectorised (one ``searchsorted`` and one ``bincount``), so a million rows take milliseconds.

    Args:
        values: Values to count (1-D).
        edges: Finite, strictly increasing cut points, e.g. from :func:`quantile_edges`.

    Returns:
        Counts of length ``len(edges) + 1``.

    Raises:
        ValueError: If an input is not 1-D or ``edges`` is not finite and strictly increasing.

    >>> bin_counts(np.array([0.0, 1.0, 1.5, 3.0, np.nan]), np.array([1.0, 2.0])).tolist()
    [2, 1, 1]
    """
    cuts = _check_edges(edges)
    arr = _as_1d_float(values, "values")
    # searchsorted sorts NaN after +inf, i.e. into the last bin: count everything, then take
    # the NaNs back out of that bin (cheaper than masking a copy of the values).
    idx = np.searchsorted(cuts, arr, side="left")
    counts = np.bincount(idx, minlength=cuts.size + 1).astype(np.int64, copy=False)
    counts[-1] -= np.count_nonzero(np.isnan(arr))
    return counts


def _is_missing(value: object) -> bool:
    """True for None and float NaN (Python or numpy)."""
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def category_counts(
    values: npt.NDArray[np.object_] | Sequence[object], categories: Sequence[str]
) -> IntArray:
    """Counts over the reference categories plus one final "unseen" bucket.

    A value counts for category ``i`` when it equals ``categories[i]``; any other non-missing
    value counts in the last bucket. None and float NaN are missing and not counted.

    The values are tallied with :class:`collections.Counter` (a C loop) and only the few distinct
    values are then mapped to buckets, which is much faster than a per-row lookup and than
    ``np.unique`` (a sort with Python comparisons) on large object arrays.

    Args:
        values: Category values (1-D object array or sequence).
        categories: Reference categories, without duplicates.

    Returns:
        Counts of length ``len(categories) + 1``; the last entry counts unseen values.

    Raises:
        ValueError: If ``categories`` has duplicates or ``values`` is not 1-D.

    >>> category_counts(["a", "b", "a", None, float("nan"), "zzz"], ["a", "b", "c"]).tolist()
    [2, 1, 0, 1]
    """
    lookup: dict[object, int] = {c: i for i, c in enumerate(categories)}
    if len(lookup) != len(categories):
        dupes = sorted(c for c, n in Counter(categories).items() if n > 1)
        raise ValueError(f"categories must be unique, got duplicates {dupes}")
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"values must be 1-D, got shape {values.shape}")
        items: list[object] = values.tolist()
    else:
        items = list(values)
    try:
        tally = Counter(items)
    except TypeError as exc:
        raise ValueError(f"category values must be hashable: {exc}") from None
    counts = np.zeros(len(categories) + 1, dtype=np.int64)
    unseen = len(categories)
    for value, n in tally.items():
        if not _is_missing(value):
            counts[lookup.get(value, unseen)] += n
    return counts


def proportions(counts: IntArray | FloatArray) -> FloatArray:
    """Share of each bin: ``p_i = c_i / sum_j c_j``.

    Args:
        counts: Non-negative, finite counts (1-D, non-empty).

    Returns:
        Proportions summing to 1.

    Raises:
        ValueError: ``"no observations"`` when the total is 0; also for empty, negative,
            non-finite or non-1-D counts.

    >>> [round(float(p), 2) for p in proportions(np.array([1, 3, 0]))]
    [0.25, 0.75, 0.0]
    """
    arr = _as_1d_float(counts, "counts")
    if arr.size == 0:
        raise ValueError("counts must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError("counts must be finite")
    if np.any(arr < 0):
        raise ValueError("counts must be non-negative")
    total = float(arr.sum())
    if total == 0:
        raise ValueError("no observations")
    return arr / total
