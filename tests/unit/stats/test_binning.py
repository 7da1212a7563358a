from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlobs.stats import (
    FloatArray,
    bin_counts,
    bin_index,
    category_counts,
    proportions,
    quantile_edges,
)

# Values with NaN and +/-inf mixed in, within a realistic magnitude.
_value = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
_values = st.lists(_value, min_size=0, max_size=200)
_finite_values = st.lists(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), min_size=1, max_size=200
)


def arr(values: list[float]) -> FloatArray:
    return np.array(values, dtype=np.float64)


# ----------------------------------------------------------------------------- quantile_edges


def test_quantile_edges_known_answer() -> None:
    # 1..10, quartiles by linear interpolation at positions 9 * k / 4 = 2.25, 4.5, 6.75
    # (0-based): 3 + 0.25, 5 + 0.5, 7 + 0.75.
    assert quantile_edges(arr(list(range(1, 11))), n_bins=4).tolist() == [3.25, 5.5, 7.75]


def test_quantile_edges_ignore_nan_and_inf() -> None:
    values = arr([1.0, 2.0, 3.0, 4.0, np.nan, np.inf, -np.inf])
    assert quantile_edges(values, n_bins=2).tolist() == [2.5]


def test_constant_column_gives_no_edges_and_one_bin() -> None:
    values = np.full(50, 3.0)
    edges = quantile_edges(values)
    assert edges.shape == (0,)
    assert bin_counts(values, edges).tolist() == [50]
    assert set(bin_index(values, edges).tolist()) == {0}
    # a later window with other values still lands in the single bin
    assert bin_counts(arr([-1.0, 3.0, 100.0, np.nan]), edges).tolist() == [3]


def test_low_cardinality_ints_get_unique_edges_and_one_bin_per_value() -> None:
    values = np.repeat(arr([0.0, 1.0, 2.0, 3.0]), 100)  # 400 values, 25 % each
    edges = quantile_edges(values, n_bins=10)
    # positions 399 * k / 10 = 39.9, 79.8, 119.7, ... -> 0, 0, 1, 1, 1.5, 2, 2, 3, 3 -> unique
    assert edges.tolist() == [0.0, 1.0, 1.5, 2.0, 3.0]
    idx = bin_index(values, edges)
    for v in range(4):
        assert len(set(idx[values == v].tolist())) == 1  # each value in exactly one bin
    per_value = [int(idx[values == v][0]) for v in range(4)]
    assert per_value == [0, 1, 3, 4]  # distinct values -> distinct bins, in order
    assert bin_counts(values, edges).tolist() == [100, 100, 0, 100, 100, 0]


def test_quantile_edges_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n_bins must be at least 2, got 1"):
        quantile_edges(arr([1.0, 2.0]), n_bins=1)
    with pytest.raises(ValueError, match="no finite value"):
        quantile_edges(arr([np.nan, np.inf]))
    with pytest.raises(ValueError, match="no finite value"):
        quantile_edges(arr([]))
    with pytest.raises(ValueError, match="must be 1-D"):
        quantile_edges(np.ones((2, 2)))


def test_quantile_edges_survive_extreme_magnitudes() -> None:
    edges = quantile_edges(arr([-1.7e308, 1.7e308]), n_bins=4)
    assert np.all(np.isfinite(edges))
    assert np.all(np.diff(edges) > 0)


@settings(max_examples=100, deadline=None)
@given(values=_finite_values, n_bins=st.integers(min_value=2, max_value=20))
def test_quantile_edges_strictly_increasing(values: list[float], n_bins: int) -> None:
    edges = quantile_edges(arr(values), n_bins=n_bins)
    assert edges.dtype == np.float64
    assert len(edges) <= n_bins - 1
    assert np.all(np.isfinite(edges))
    assert np.all(np.diff(edges) > 0)
    assert np.all(edges >= min(values)) and np.all(edges <= max(values))


# ------------------------------------------------------------------------- bin_index / counts


def test_bins_are_right_closed() -> None:
    edges = arr([1.0, 2.0])
    # (-inf, 1] -> 0, (1, 2] -> 1, (2, inf) -> 2
    values = arr([0.5, 1.0, 1.0000001, 2.0, 2.5])
    assert bin_index(values, edges).tolist() == [0, 0, 1, 1, 2]


def test_values_outside_reference_range_land_in_outer_bins() -> None:
    reference = arr([10.0, 20.0, 30.0, 40.0, 50.0])
    edges = quantile_edges(reference, n_bins=4)  # [20, 30, 40]
    assert edges.tolist() == [20.0, 30.0, 40.0]
    current = arr([-1e9, 5.0, 55.0, 1e9, -np.inf, np.inf])
    assert bin_index(current, edges).tolist() == [0, 0, 3, 3, 0, 3]
    assert bin_counts(current, edges).tolist() == [3, 0, 0, 3]


def test_nan_maps_to_minus_one_and_is_not_counted() -> None:
    edges = arr([0.0])
    values = arr([np.nan, -1.0, np.nan, 1.0, 2.0])
    assert bin_index(values, edges).tolist() == [-1, 0, -1, 1, 1]
    counts = bin_counts(values, edges)
    assert counts.tolist() == [1, 2]
    assert counts.dtype == np.int64
    assert bin_counts(arr([np.nan, np.nan]), edges).tolist() == [0, 0]
    assert bin_counts(arr([]), edges).tolist() == [0, 0]


def test_bin_functions_reject_bad_edges() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        bin_counts(arr([1.0]), arr([2.0, 1.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        bin_index(arr([1.0]), arr([1.0, 1.0]))
    with pytest.raises(ValueError, match="edges must be finite"):
        bin_counts(arr([1.0]), arr([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"values must be 1-D, got shape \(1, 1\)"):
        bin_counts(np.ones((1, 1)), arr([0.0]))


@settings(max_examples=100, deadline=None)
@given(values=_values, reference=_finite_values, n_bins=st.integers(min_value=2, max_value=20))
def test_bin_counts_sum_to_non_nan_count_and_match_bin_index(
    values: list[float], reference: list[float], n_bins: int
) -> None:
    edges = quantile_edges(arr(reference), n_bins=n_bins)
    x = arr(values)
    counts = bin_counts(x, edges)
    assert counts.shape == (len(edges) + 1,)
    assert int(counts.sum()) == int(np.count_nonzero(~np.isnan(x)))
    idx = bin_index(x, edges)
    assert counts.tolist() == np.bincount(idx[idx >= 0], minlength=len(edges) + 1).tolist()


@settings(max_examples=100, deadline=None)
@given(window_a=_values, window_b=_values, reference=_finite_values)
def test_frozen_edges_make_windows_comparable(
    window_a: list[float], window_b: list[float], reference: list[float]
) -> None:
    # Binned on the same frozen edges, the counts of two windows add up to the counts of
    # their concatenation (which would not hold if each window got its own quantiles).
    edges = quantile_edges(arr(reference), n_bins=10)
    a, b = arr(window_a), arr(window_b)
    both = bin_counts(np.concatenate([a, b]), edges)
    assert (bin_counts(a, edges) + bin_counts(b, edges)).tolist() == both.tolist()


def test_bin_counts_is_fast_enough_for_a_million_rows() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=1_000_000)
    values[::97] = np.nan
    edges = quantile_edges(values[:10_000])
    counts = bin_counts(values, edges)
    assert int(counts.sum()) == 1_000_000 - len(values[::97])


# ---------------------------------------------------------------------------- category_counts


def test_category_counts_with_unseen_and_missing() -> None:
    values = ["a", "b", "a", None, float("nan"), np.nan, np.float64("nan"), "zzz", "c", "A", 1]
    # a: 2, b: 1, c: 1, unseen: "zzz", "A", 1 -> 3; None and the NaNs are not counted
    assert category_counts(values, ["a", "b", "c"]).tolist() == [2, 1, 1, 3]
    obj = np.array(values, dtype=object)
    assert category_counts(obj, ["a", "b", "c"]).tolist() == [2, 1, 1, 3]


def test_category_counts_edge_cases() -> None:
    assert category_counts([], ["a"]).tolist() == [0, 0]
    assert category_counts([None, np.nan], ["a"]).tolist() == [0, 0]
    assert category_counts(["x", "y"], []).tolist() == [2]
    assert category_counts(np.array(["b", "b", "q"]), ["a", "b"]).tolist() == [0, 2, 1]
    counts = category_counts(["a"], ["a"])
    assert counts.dtype == np.int64


def test_category_counts_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"categories must be unique, got duplicates \['a'\]"):
        category_counts(["a"], ["a", "b", "a"])
    with pytest.raises(ValueError, match="must be 1-D"):
        category_counts(np.array([["a"]], dtype=object), ["a"])
    with pytest.raises(ValueError, match="hashable"):
        category_counts([["a"]], ["a"])


def test_category_counts_large_object_array() -> None:
    rng = np.random.default_rng(1)
    cats = np.array(["grocery", "gas", "online", "travel"], dtype=object)
    values = cats[rng.integers(0, 4, 200_000)]
    values[::10] = None
    counts = category_counts(values, ["grocery", "gas", "online"])
    assert int(counts.sum()) == 180_000
    assert int(counts[-1]) == int(np.count_nonzero(values == "travel"))


# -------------------------------------------------------------------------------- proportions


def test_proportions_known_answer() -> None:
    assert proportions(np.array([1, 3, 0, 4])).tolist() == [0.125, 0.375, 0.0, 0.5]
    assert proportions(arr([0.5, 1.5])).tolist() == [0.25, 0.75]


def test_proportions_of_all_missing_input_raise_no_observations() -> None:
    counts = bin_counts(arr([np.nan, np.nan]), arr([0.0]))
    with pytest.raises(ValueError, match="^no observations$"):
        proportions(counts)
    with pytest.raises(ValueError, match="^no observations$"):
        proportions(category_counts([None], ["a"]))


def test_proportions_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        proportions(np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="non-negative"):
        proportions(np.array([1, -1, 2]))
    with pytest.raises(ValueError, match="finite"):
        proportions(arr([1.0, np.inf]))
