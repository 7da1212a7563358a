from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from mlobs.stats import (
    FloatArray,
    bin_counts,
    chi2_test,
    js_distance,
    ks_pvalue,
    ks_statistic,
    proportions,
    psi,
    quantile_edges,
    wasserstein_normalized,
)


def arr(values: list[float]) -> FloatArray:
    return np.array(values, dtype=np.float64)


# Non-negative weight vectors with a positive sum (unnormalised: the functions normalise).
def _vector(k: int) -> st.SearchStrategy[list[float]]:
    weight = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1e6))
    return st.lists(weight, min_size=k, max_size=k).filter(lambda xs: sum(xs) > 0)


_pairs = st.integers(min_value=2, max_value=20).flatmap(lambda k: st.tuples(_vector(k), _vector(k)))


# ------------------------------------------------------------------------------------- PSI


def test_psi_known_answer_two_bins() -> None:
    # (0.25 - 0.5) * ln(0.25 / 0.5) = -0.25 * -0.693147 = 0.173287
    # (0.75 - 0.5) * ln(0.75 / 0.5) =  0.25 *  0.405465 = 0.101366
    #                                                     = 0.274653
    assert psi(arr([0.5, 0.5]), arr([0.25, 0.75])) == pytest.approx(0.274653, abs=1e-6)
    # counts are normalised first: same answer
    assert psi(arr([50, 50]), arr([1, 3])) == pytest.approx(0.274653, abs=1e-6)


def test_psi_floors_empty_bins_at_eps() -> None:
    # ref [0.5, 0.5, 0] -> floored [0.5, 0.5, 1e-4]; cur [0.5, 0.25, 0.25]
    #   bin 0: 0
    #   bin 1: (0.25 - 0.5) * ln(0.5)          = 0.173287
    #   bin 2: (0.25 - 1e-4) * ln(0.25 / 1e-4)  = 0.2499 * 7.824046 = 1.955229
    #                                                                = 2.128516
    ref, cur = arr([0.5, 0.5, 0.0]), arr([0.5, 0.25, 0.25])
    assert psi(ref, cur) == pytest.approx(2.128516, abs=1e-6)
    # symmetric in this formula: an empty bin in cur gives the same, finite value
    assert psi(cur, ref) == pytest.approx(2.128516, abs=1e-6)
    # a smaller floor makes the empty bin weigh more: 0.25 * ln(0.25 / 1e-6) ~ 3.1
    assert psi(ref, cur, eps=1e-6) > psi(ref, cur)


def test_psi_identical_is_exactly_zero() -> None:
    p = arr([0.1, 0.0, 0.2, 0.7])
    assert psi(p, p) == 0.0
    assert psi(p, p * 7) == 0.0


def test_psi_rejects_bad_eps() -> None:
    with pytest.raises(ValueError, match="eps must be in"):
        psi(arr([1.0, 1.0]), arr([1.0, 1.0]), eps=0.0)


@settings(max_examples=100, deadline=None)
@given(pair=_pairs)
def test_psi_properties(pair: tuple[list[float], list[float]]) -> None:
    p, q = arr(pair[0]), arr(pair[1])
    assert psi(p, p) == 0.0
    value = psi(p, q)
    assert math.isfinite(value)
    assert value >= 0.0


# -------------------------------------------------------------------------------------- JS


def test_js_distance_extremes() -> None:
    assert js_distance(arr([1.0, 0.0]), arr([0.0, 1.0])) == 1.0
    assert js_distance(arr([0.5, 0.5]), arr([0.5, 0.5])) == 0.0
    assert js_distance(arr([3.0, 1.0, 0.0]), arr([6.0, 2.0, 0.0])) == 0.0


def test_js_distance_known_answer_two_bins() -> None:
    # r = [1, 0], c = [0.5, 0.5], m = [0.75, 0.25]
    # KL(r || m) = 1 * log2(1 / 0.75)                           = 0.415037
    # KL(c || m) = 0.5 * log2(0.5 / 0.75) + 0.5 * log2(0.5 / 0.25)
    #            = 0.5 * -0.584963 + 0.5 * 1                    = 0.207519
    # JSD = (0.415037 + 0.207519) / 2 = 0.311278; distance = sqrt(0.311278) = 0.557923
    assert js_distance(arr([1.0, 0.0]), arr([0.5, 0.5])) == pytest.approx(0.557923, abs=1e-6)
    # r = [0.5, 0.5], c = [0.25, 0.75], m = [0.375, 0.625]
    # KL(r || m) = 0.5 * log2(0.5 / 0.375) + 0.5 * log2(0.5 / 0.625)
    #            = 0.5 * 0.415037 + 0.5 * -0.321928             = 0.046554
    # KL(c || m) = 0.25 * log2(0.25 / 0.375) + 0.75 * log2(0.75 / 0.625)
    #            = 0.25 * -0.584963 + 0.75 * 0.263034           = 0.051035
    # JSD = 0.048795; distance = 0.220895
    assert js_distance(arr([0.5, 0.5]), arr([0.25, 0.75])) == pytest.approx(0.220895, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(pair=_pairs)
def test_js_distance_properties(pair: tuple[list[float], list[float]]) -> None:
    p, q = arr(pair[0]), arr(pair[1])
    value = js_distance(p, q)
    assert 0.0 <= value <= 1.0
    assert js_distance(q, p) == pytest.approx(value, abs=1e-12)
    assert js_distance(p, p) == 0.0
    expected = float(jensenshannon(p / p.sum(), q / q.sum(), base=2))
    assert value == pytest.approx(expected, abs=1e-7)


# -------------------------------------------------------------------------------------- KS


def test_ks_statistic_known_answer_three_bins() -> None:
    # CDF ref = [0.2, 0.8, 1.0], CDF cur = [0.3, 0.5, 1.0]; |diff| = [0.1, 0.3, 0] -> 0.3
    assert ks_statistic(arr([0.2, 0.6, 0.2]), arr([0.3, 0.2, 0.5])) == pytest.approx(0.3)
    # counts: CDF ref = [1/4, 2/4, 1], CDF cur = [0, 0, 1] -> 0.5
    assert ks_statistic(arr([1, 1, 2]), arr([0, 0, 5])) == pytest.approx(0.5)
    assert ks_statistic(arr([1.0, 0.0]), arr([0.0, 1.0])) == 1.0


@settings(max_examples=100, deadline=None)
@given(pair=_pairs)
def test_ks_statistic_in_unit_interval(pair: tuple[list[float], list[float]]) -> None:
    p, q = arr(pair[0]), arr(pair[1])
    assert 0.0 <= ks_statistic(p, q) <= 1.0
    assert ks_statistic(p, p) == 0.0


def test_ks_pvalue_matches_scipy_asymptotic_two_sample() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=300), rng.normal(0.25, size=200)
    result = ks_2samp(x, y, method="asymp")
    assert ks_pvalue(float(result.statistic), 300, 200) == pytest.approx(result.pvalue)


def test_ks_pvalue_on_binned_data_is_conservative() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=2_000), rng.normal(0.1, size=2_000)
    edges = quantile_edges(x, n_bins=5)
    d_binned = ks_statistic(proportions(bin_counts(x, edges)), proportions(bin_counts(y, edges)))
    raw = ks_2samp(x, y, method="asymp")
    assert d_binned <= raw.statistic + 1e-12
    assert ks_pvalue(d_binned, 2_000, 2_000) >= raw.pvalue - 1e-12


def test_ks_pvalue_range_and_monotone() -> None:
    assert ks_pvalue(0.0, 100, 100) == 1.0
    ps = [ks_pvalue(d, 100, 100) for d in (0.05, 0.1, 0.2, 0.4)]
    assert all(0.0 <= p <= 1.0 for p in ps)
    assert ps == sorted(ps, reverse=True)
    assert ks_pvalue(0.01, 1_000_000, 1_000_000) < 1e-10  # large windows: tiny shifts count
    with pytest.raises(ValueError, match=r"statistic must be in \[0, 1\], got 1.5"):
        ks_pvalue(1.5, 10, 10)
    with pytest.raises(ValueError, match="n_ref=0, n_cur=10"):
        ks_pvalue(0.5, 0, 10)


# ------------------------------------------------------------------------------ Wasserstein


def test_wasserstein_known_answers() -> None:
    # mass 0.25 moves from center 0 to center 10: W1 = 0.25 * 10 = 2.5; / ref_std 5 -> 0.5
    centers = arr([0.0, 10.0])
    assert wasserstein_normalized(
        arr([0.5, 0.5]), arr([0.25, 0.75]), centers, 5.0
    ) == pytest.approx(0.5)
    # all mass moves from 0 to 3: W1 = 3; / 1.5 -> 2
    assert wasserstein_normalized(
        arr([1, 0, 0]), arr([0, 0, 4]), arr([0.0, 1.0, 3.0]), 1.5
    ) == pytest.approx(2.0)
    assert wasserstein_normalized(arr([1, 2]), arr([2, 4]), centers, 1.0) == 0.0


def test_wasserstein_rejects_bad_input() -> None:
    p = arr([0.5, 0.5])
    with pytest.raises(ValueError, match=r"ref_std must be finite and > 0, got 0.0"):
        wasserstein_normalized(p, p, arr([0.0, 1.0]), 0.0)
    with pytest.raises(ValueError, match=r"ref_std"):
        wasserstein_normalized(p, p, arr([0.0, 1.0]), -1.0)
    with pytest.raises(ValueError, match=r"centers must have the shape of ref and cur \(2,\)"):
        wasserstein_normalized(p, p, arr([0.0, 1.0, 2.0]), 1.0)
    with pytest.raises(ValueError, match="centers must be finite"):
        wasserstein_normalized(p, p, arr([0.0, np.inf]), 1.0)


# ------------------------------------------------------------------------------------ chi2


def test_chi2_known_answer_two_bins() -> None:
    # expected = [50, 50]; X2 = (30 - 50)^2 / 50 + (70 - 50)^2 / 50 = 8 + 8 = 16, dof 1
    # p = P(chi2_1 >= 16) = erfc(sqrt(16 / 2))
    stat, p = chi2_test(arr([0.5, 0.5]), np.array([30, 70]))
    assert stat == pytest.approx(16.0)
    assert p == pytest.approx(math.erfc(math.sqrt(8.0)))
    assert p == pytest.approx(6.334e-5, rel=1e-3)


def test_chi2_known_answer_three_bins() -> None:
    # expected = 100 * [0.2, 0.3, 0.5] = [20, 30, 50]
    # X2 = 100 / 20 + 100 / 30 + 0 = 8.333333, dof 2: p = exp(-X2 / 2) = 0.015504
    stat, p = chi2_test(arr([2, 3, 5]), np.array([10, 40, 50]))
    assert stat == pytest.approx(25 / 3)
    assert p == pytest.approx(math.exp(-25 / 6))


def test_chi2_floors_empty_reference_bins() -> None:
    # ref [0.5, 0.5, 0] -> [0.5, 0.5, 1e-4] / 1.0001; n = 10
    # expected = [4.9995, 4.9995, 0.0009999]
    # X2 = 0.0005^2 / 4.9995 + 0.9995^2 / 4.9995 + 0.9990^2 / 0.0009999
    #    = 0.00000005 + 0.19982 + 998.1010 = 998.3008 (finite, and huge: an unseen bin)
    stat, p = chi2_test(arr([0.5, 0.5, 0.0]), np.array([5, 4, 1]))
    assert stat == pytest.approx(998.3008, rel=1e-6)
    assert 0.0 <= p < 1e-100
    stat, p = chi2_test(arr([1.0, 1.0]), np.array([5, 5]))
    assert (stat, p) == (0.0, 1.0)
    assert chi2_test(arr([1.0]), np.array([7])) == (0.0, 1.0)  # one bin: dof floored at 1


def test_chi2_rejects_no_current_observations() -> None:
    with pytest.raises(ValueError, match="cur"):
        chi2_test(arr([0.5, 0.5]), np.array([0, 0]))


# --------------------------------------------------------------------------- common errors


@pytest.mark.parametrize("func", [psi, js_distance, ks_statistic])
def test_shape_mismatch_names_both_shapes(func: Callable[[FloatArray, FloatArray], float]) -> None:
    with pytest.raises(ValueError, match=r"same shape.*got \(2,\) and \(3,\)"):
        func(arr([0.5, 0.5]), arr([0.2, 0.3, 0.5]))


def test_shape_mismatch_in_every_function() -> None:
    two, three = arr([0.5, 0.5]), arr([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        wasserstein_normalized(two, three, arr([0.0, 1.0]), 1.0)
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        chi2_test(two, np.array([1, 2, 3]))


@pytest.mark.parametrize(
    ("ref", "cur", "message"),
    [
        ([], [], "ref must not be empty"),
        ([0.5, -0.5], [0.5, 0.5], "ref must be non-negative"),
        ([0.5, 0.5], [1.0, -1.0], "cur must be non-negative"),
        ([0.5, np.nan], [0.5, 0.5], "ref must be finite"),
        ([0.0, 0.0], [0.5, 0.5], "ref has no observations"),
    ],
)
def test_bad_vectors_raise(ref: list[float], cur: list[float], message: str) -> None:
    for func in (psi, js_distance, ks_statistic):
        with pytest.raises(ValueError, match=message):
            func(arr(ref), arr(cur))
