"""Data-quality measures: missing values, duplicate rows, out-of-range values.

>>> missing_share(np.array([1.0, np.nan, 3.0, np.nan]))
0.5
>>> duplicate_rows(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]]))
1
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlobs.stats._types import FloatArray

__all__ = ["duplicate_rows", "missing_share", "out_of_range_share"]


class _NaN:
    """Stand-in for NaN in row keys: equal to itself, unlike NaN."""

    def __repr__(self) -> str:
        return "<NaN>"


_NAN = _NaN()
_NONE = np.array([None], dtype=object)  # for elementwise ``is None`` tests on object arrays


def _missing_mask(arr: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Elementwise: is the value None or NaN (NaT for datetimes)?"""
    kind = arr.dtype.kind
    if kind in "fc":
        return np.asarray(np.isnan(arr), dtype=np.bool_)
    if kind in "mM":
        return np.asarray(np.isnat(arr), dtype=np.bool_)
    if kind == "O":
        # NaN is the only value that differs from itself (numpy compares object elements with
        # ``!=``, without an identity shortcut).
        is_none = np.equal(arr, _NONE)
        is_nan = np.not_equal(arr, arr)
        return np.asarray(is_none | is_nan, dtype=np.bool_)
    return np.zeros(arr.shape, dtype=np.bool_)


def missing_share(values: npt.NDArray[Any]) -> float:
    """Share of missing values: ``#{i : x_i is None or NaN} / n``.

    Args:
        values: A 1-D array (object, float, or any other dtype, which has no missing values).

    Returns:
        The share in [0, 1]; 0.0 for an empty array.

    Raises:
        ValueError: If ``values`` is not 1-D.

    >>> missing_share(np.array(["a", None, float("nan"), "b"], dtype=object))
    0.5
    >>> missing_share(np.array([], dtype=object))
    0.0
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        return 0.0
    return float(np.count_nonzero(_missing_mask(arr))) / arr.size


def duplicate_rows(rows: npt.NDArray[Any]) -> int:
    """Number of rows that repeat an earlier row exactly: ``n - #distinct rows``.

    NaN counts as equal to NaN and None as equal to None (None and NaN differ from each other).
    Numeric arrays are compared as raw bytes after canonicalising NaN and ``-0.0`` (one
    ``np.unique``); object arrays through a set of row tuples, which handles 100k rows in well
    under a second.

    Args:
        rows: A 2-D array, one row per record.

    Returns:
        The number of duplicate rows, ``>= 0``.

    Raises:
        ValueError: If ``rows`` is not 2-D.

    >>> rows = np.array([["a", None, float("nan")], ["a", None, float("nan")], ["b", 1, 2.0]],
    ...                 dtype=object)
    >>> duplicate_rows(rows)
    1
    """
    arr = np.asarray(rows)
    if arr.ndim != 2:
        raise ValueError(f"rows must be 2-D, got shape {arr.shape}")
    n_rows, n_cols = int(arr.shape[0]), int(arr.shape[1])
    if n_rows == 0:
        return 0
    if n_cols == 0:
        return n_rows - 1  # all rows are the empty row
    kind = arr.dtype.kind
    if kind in "biuf":
        if kind == "f":
            # One bit pattern per value: every NaN becomes np.nan, -0.0 becomes 0.0.
            arr = np.where(np.isnan(arr), np.nan, arr + 0.0)
        contiguous = np.ascontiguousarray(arr)
        row_bytes = contiguous.view(np.dtype((np.void, contiguous.dtype.itemsize * n_cols)))
        return n_rows - int(np.unique(row_bytes.ravel()).size)
    obj = arr.astype(object)
    obj[_missing_mask(obj) & np.not_equal(obj, _NONE)] = _NAN
    try:
        distinct = set(map(tuple, obj.tolist()))
    except TypeError as exc:
        raise ValueError(f"row values must be hashable: {exc}") from None
    return n_rows - len(distinct)


def out_of_range_share(values: FloatArray, low: float, high: float) -> float:
    """Share of the finite values outside ``[low, high]``: ``#{x_i < low or x_i > high} / #finite``.

    Args:
        values: 1-D values; NaN and +/-inf are ignored.
        low: Lower bound (inclusive).
        high: Upper bound (inclusive), ``>= low``.

    Returns:
        The share in [0, 1]; 0.0 when there is no finite value.

    Raises:
        ValueError: If ``values`` is not 1-D, a bound is NaN, or ``low > high``.

    >>> out_of_range_share(np.array([-1.0, 0.0, 5.0, 10.0, 11.0, np.nan]), 0.0, 10.0)
    0.4
    """
    if np.isnan(low) or np.isnan(high):
        raise ValueError(f"bounds must not be NaN, got low={low}, high={high}")
    if low > high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {arr.shape}")
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return 0.0
    outside = np.count_nonzero((finite < low) | (finite > high))
    return float(outside) / finite.size
