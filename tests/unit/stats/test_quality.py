from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlobs.stats import FloatArray, duplicate_rows, missing_share, out_of_range_share


def arr(values: list[float]) -> FloatArray:
    return np.array(values, dtype=np.float64)


# ---------------------------------------------------------------------------- missing_share


def test_missing_share_float_and_object() -> None:
    assert missing_share(arr([1.0, np.nan, 3.0, np.nan])) == 0.5
    values = np.array(["a", None, float("nan"), np.float64("nan"), "b", 0.0, ""], dtype=object)
    assert missing_share(values) == pytest.approx(3 / 7)  # None and two NaNs; "" and 0 are values
    assert missing_share(np.array([1, 2, 3])) == 0.0  # ints cannot be missing
    assert missing_share(np.array(["x", "y"])) == 0.0
    assert missing_share(np.array([None, None], dtype=object)) == 1.0


def test_missing_share_empty_and_bad_shape() -> None:
    assert missing_share(np.array([], dtype=object)) == 0.0
    assert missing_share(arr([])) == 0.0
    with pytest.raises(ValueError, match=r"values must be 1-D, got shape \(2, 1\)"):
        missing_share(np.ones((2, 1)))


# --------------------------------------------------------------------------- duplicate_rows


def test_duplicate_rows_float_nan_equals_nan() -> None:
    rows = np.array(
        [
            [1.0, np.nan],
            [1.0, np.nan],  # repeats row 0 (NaN == NaN)
            [1.0, 2.0],
            [1.0, 2.0],  # repeats row 2
            [1.0, 2.0],  # repeats row 2 again
            [-0.0, 2.0],
            [0.0, 2.0],  # -0.0 == 0.0
        ]
    )
    assert duplicate_rows(rows) == 4


def test_duplicate_rows_object_none_and_nan() -> None:
    rows = np.array(
        [
            ["a", None, 1.0],
            ["a", None, 1.0],  # repeat (None == None)
            ["a", float("nan"), 1.0],
            ["a", np.nan, 1.0],  # repeat (NaN == NaN, even another NaN object)
            ["b", None, 1.0],
            ["a", None, 2.0],
        ],
        dtype=object,
    )
    # None and NaN are different missing markers: row 2 does not repeat row 0
    assert duplicate_rows(rows) == 2


def test_duplicate_rows_edge_cases() -> None:
    assert duplicate_rows(np.empty((0, 3))) == 0
    assert duplicate_rows(np.empty((4, 0))) == 3
    assert duplicate_rows(np.array([[1, 2], [1, 2], [2, 1]])) == 1
    assert duplicate_rows(np.array([["x", "y"], ["x", "y"]])) == 1
    assert duplicate_rows(np.array([[True], [False], [True]])) == 1
    with pytest.raises(ValueError, match=r"rows must be 2-D, got shape \(3,\)"):
        duplicate_rows(arr([1.0, 1.0, 1.0]))


def test_duplicate_rows_float_and_object_paths_agree_on_100k_rows() -> None:
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 3, size=(100_000, 12)).astype(np.float64)
    rows[::11, 4] = np.nan
    rows = np.vstack([rows, rows[:500]])  # at least 500 repeats
    n_float = duplicate_rows(rows)
    assert n_float >= 500
    assert duplicate_rows(rows.astype(object)) == n_float


@settings(max_examples=100, deadline=None)
@given(
    rows=hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 30), st.integers(1, 4)),
        elements=st.sampled_from([0.0, 1.0, np.nan]),
    )
)
def test_duplicate_rows_of_doubled_array(rows: FloatArray) -> None:
    # every row of the second copy repeats a row of the first one
    n = duplicate_rows(rows)
    assert 0 <= n <= max(len(rows) - 1, 0)
    assert duplicate_rows(np.vstack([rows, rows])) == len(rows) + n


# ----------------------------------------------------------------------- out_of_range_share


def test_out_of_range_share_known_answer() -> None:
    # finite: -1, 0, 5, 10, 11 -> outside [0, 10]: -1, 11 -> 2 / 5; bounds are inclusive
    values = arr([-1.0, 0.0, 5.0, 10.0, 11.0, np.nan, np.inf])
    assert out_of_range_share(values, 0.0, 10.0) == 0.4
    assert out_of_range_share(values, -np.inf, np.inf) == 0.0


def test_out_of_range_share_edge_cases() -> None:
    assert out_of_range_share(arr([]), 0.0, 1.0) == 0.0
    assert out_of_range_share(arr([np.nan, np.inf, -np.inf]), 0.0, 1.0) == 0.0
    assert out_of_range_share(arr([3.0, 3.0]), 3.0, 3.0) == 0.0
    with pytest.raises(ValueError, match="low must be <= high, got low=2.0, high=1.0"):
        out_of_range_share(arr([1.0]), 2.0, 1.0)
    with pytest.raises(ValueError, match="bounds must not be NaN"):
        out_of_range_share(arr([1.0]), float("nan"), 1.0)
    with pytest.raises(ValueError, match="must be 1-D"):
        out_of_range_share(np.ones((2, 2)), 0.0, 1.0)
