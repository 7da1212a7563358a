"""Drift measures between a reference and a current distribution over the SAME frozen bins.

Every function takes proportion or count vectors (they are normalised to sum 1 first), as
produced by :mod:`mlobs.stats.binning`, and raises :class:`ValueError` for vectors of different
shapes, empty, negative, non-finite or all-zero vectors.

>>> ref, cur = np.array([0.5, 0.5]), np.array([0.25, 0.75])
>>> round(psi(ref, cur), 4), round(js_distance(ref, cur), 4), round(ks_statistic(ref, cur), 4)
(0.2747, 0.2209, 0.25)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import special

from mlobs.stats._checks import nonnegative_vector
from mlobs.stats._types import FloatArray, IntArray

__all__ = [
    "chi2_test",
    "js_distance",
    "ks_pvalue",
    "ks_statistic",
    "psi",
    "wasserstein_normalized",
]


def _normalised(values: npt.ArrayLike, name: str) -> FloatArray:
    """``values`` validated and divided by its sum."""
    arr = nonnegative_vector(values, name)
    total = float(arr.sum())
    if total == 0:
        raise ValueError(f"{name} has no observations (sums to 0)")
    return arr / total


def _pair(ref: npt.ArrayLike, cur: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Both vectors validated, of equal shape, and normalised to sum 1."""
    shape_ref, shape_cur = np.shape(ref), np.shape(cur)
    if shape_ref != shape_cur:
        raise ValueError(
            f"ref and cur must have the same shape (same bins), got {shape_ref} and {shape_cur}"
        )
    return _normalised(ref, "ref"), _normalised(cur, "cur")


def _check_eps(eps: float) -> None:
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}")


def psi(ref: FloatArray, cur: FloatArray, *, eps: float = 1e-4) -> float:
    """Population Stability Index.

    ``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` over the bins, where ``r`` and ``c`` are the
    reference and current proportions (Yurdakul, B. (2018), "Statistical properties of
    population stability index", Western Michigan University). Both vectors are first
    normalised to sum 1; then every proportion below ``eps`` (in particular every empty bin) is
    floored at ``eps``. The floor exists because ``ln(0)`` is undefined: without it one empty
    bin makes PSI infinite; with ``eps = 1e-4`` an empty bin contributes a large but finite
    term instead of dominating the sum. The floored vectors are not renormalised: each term is
    ``>= 0`` either way, so ``psi >= 0`` and ``psi(p, p) == 0`` exactly.

    Common reading: < 0.1 no significant shift, 0.1-0.25 moderate, > 0.25 significant.

    Args:
        ref: Reference proportions or counts.
        cur: Current proportions or counts over the same bins.
        eps: Floor for proportions, in (0, 1).

    Returns:
        The PSI, a non-negative float.

    Raises:
        ValueError: For shape mismatch, empty, negative, non-finite or all-zero vectors, or an
            ``eps`` outside (0, 1).

    >>> round(psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 4)
    0.2747
    >>> psi(np.array([3, 1]), np.array([6, 2]))
    0.0
    """
    _check_eps(eps)
    r, c = _pair(ref, cur)
    r, c = np.maximum(r, eps), np.maximum(c, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(ref: FloatArray, cur: FloatArray) -> float:
    """Jensen-Shannon distance with base-2 logarithms, in [0, 1].

    ``JS(r, c) = sqrt(0.5 * KL(r || m) + 0.5 * KL(c || m))`` with ``m = (r + c) / 2`` and
    ``KL(a || b) = sum_i a_i * log2(a_i / b_i)`` (terms with ``a_i = 0`` are 0). This is the
    square root of the Jensen-Shannon divergence (Lin, J. (1991), "Divergence measures based on
    the Shannon entropy", IEEE Trans. Inf. Theory 37(1)); it is a metric (Endres & Schindelin
    (2003)), symmetric, 0 for identical and 1 for disjoint distributions. Empty bins need no
    floor. Computed as in ``scipy.spatial.distance.jensenshannon(r, c, base=2)``, but clipped to
    [0, 1] so rounding never yields NaN or values above 1.

    Args:
        ref: Reference proportions or counts.
        cur: Current proportions or counts over the same bins.

    Returns:
        The distance, in [0, 1].

    Raises:
        ValueError: For shape mismatch, empty, negative, non-finite or all-zero vectors.

    >>> js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    1.0
    >>> js_distance(np.array([0.5, 0.5]), np.array([1, 1]))
    0.0
    """
    r, c = _pair(ref, cur)
    m = (r + c) / 2.0
    divergence = (np.sum(special.rel_entr(r, m)) + np.sum(special.rel_entr(c, m))) / 2.0
    divergence_bits = float(divergence) / math.log(2.0)
    return math.sqrt(min(max(divergence_bits, 0.0), 1.0))


def ks_statistic(ref: FloatArray, cur: FloatArray) -> float:
    """Binned two-sample Kolmogorov-Smirnov statistic.

    ``D = max_k |F_ref(k) - F_cur(k)|`` where ``F(k) = sum_{i <= k} p_i`` is the cumulative
    proportion up to bin ``k`` (Kolmogorov (1933), Smirnov (1948); see e.g. Hodges, J. L.
    (1958), "The significance probability of the Smirnov two-sample test"). Because the CDFs are
    compared only at bin edges, this is a lower bound of the statistic on the raw values.

    Args:
        ref: Reference proportions or counts.
        cur: Current proportions or counts over the same bins.

    Returns:
        The statistic, in [0, 1].

    Raises:
        ValueError: For shape mismatch, empty, negative, non-finite or all-zero vectors.

    >>> round(ks_statistic(np.array([0.2, 0.3, 0.5]), np.array([0.5, 0.3, 0.2])), 4)
    0.3
    """
    r, c = _pair(ref, cur)
    d = float(np.max(np.abs(np.cumsum(r) - np.cumsum(c))))
    return min(max(d, 0.0), 1.0)


def ks_pvalue(statistic: float, n_ref: int, n_cur: int) -> float:
    """Asymptotic p-value of the two-sample Kolmogorov-Smirnov statistic.

    ``p = P(D_n >= statistic)`` for the one-sample Kolmogorov distribution ``D_n``
    (``scipy.stats.kstwo``) at the effective sample size ``n = round(n_ref * n_cur /
    (n_ref + n_cur))``, as ``scipy.stats.ks_2samp(method="asymp")`` does (Hodges (1958);
    Simard & L'Ecuyer (2011), "Computing the two-sided Kolmogorov-Smirnov distribution").
    On binned data the statistic underestimates the raw-data statistic and ties make the
    distribution no longer continuous, so this p-value is conservative (too large): a small
    value is trustworthy, a large one does not prove the absence of drift.

    Args:
        statistic: The KS statistic, in [0, 1] (e.g. from :func:`ks_statistic`).
        n_ref: Number of reference observations (at least 1).
        n_cur: Number of current observations (at least 1).

    Returns:
        The p-value, in [0, 1].

    Raises:
        ValueError: If ``statistic`` is outside [0, 1] or a sample size is below 1.

    >>> ks_pvalue(0.0, 100, 100)
    1.0
    >>> round(ks_pvalue(0.3, 100, 100), 4)
    0.0002
    """
    if not 0.0 <= statistic <= 1.0:
        raise ValueError(f"statistic must be in [0, 1], got {statistic}")
    if n_ref < 1 or n_cur < 1:
        raise ValueError(f"sample sizes must be at least 1, got n_ref={n_ref}, n_cur={n_cur}")
    n_eff = max(1, round(n_ref * n_cur / (n_ref + n_cur)))
    from scipy import stats as sps  # the optional methods only: ~1 s to import

    p = float(sps.kstwo.sf(statistic, n_eff))
    return min(max(p, 0.0), 1.0)


def wasserstein_normalized(
    ref: FloatArray, cur: FloatArray, centers: FloatArray, ref_std: float
) -> float:
    """Wasserstein-1 distance between two binned distributions, in reference standard deviations.

    ``W1 = integral |F_ref(x) - F_cur(x)| dx`` for the distributions putting mass ``r_i`` and
    ``c_i`` at ``centers[i]`` (``scipy.stats.wasserstein_distance`` with weights; Villani, C.
    (2009), "Optimal Transport: Old and New", ch. 6), divided by ``ref_std`` so the result is
    unit-free: 0.5 means the mass moved half a reference standard deviation on average.

    Args:
        ref: Reference proportions or counts.
        cur: Current proportions or counts over the same bins.
        centers: A finite representative value per bin (e.g. the bin's reference mean).
        ref_std: Reference standard deviation, > 0.

    Returns:
        The normalised distance, >= 0.

    Raises:
        ValueError: For shape mismatch (also of ``centers``), empty, negative, non-finite or
            all-zero vectors, non-finite ``centers`` or ``ref_std <= 0``.

    >>> centers = np.array([0.0, 10.0])
    >>> wasserstein_normalized(np.array([0.5, 0.5]), np.array([0.25, 0.75]), centers, 5.0)
    0.5
    """
    r, c = _pair(ref, cur)
    x = np.asarray(centers, dtype=np.float64)
    if x.shape != r.shape:
        raise ValueError(f"centers must have the shape of ref and cur {r.shape}, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("centers must be finite")
    if not (math.isfinite(ref_std) and ref_std > 0):
        raise ValueError(f"ref_std must be finite and > 0, got {ref_std}")
    from scipy import stats as sps  # the optional methods only: ~1 s to import

    w = float(sps.wasserstein_distance(x, x, u_weights=r, v_weights=c))
    return max(w, 0.0) / ref_std


def chi2_test(ref: FloatArray, cur_counts: IntArray, *, eps: float = 1e-4) -> tuple[float, float]:
    """Pearson chi-square goodness-of-fit test of current counts against reference proportions.

    ``X2 = sum_i (O_i - E_i)^2 / E_i`` with observed counts ``O`` and expected counts
    ``E = n_cur * r'``, where ``r'`` is the reference proportion vector floored at ``eps`` (an
    empty reference bin would give ``E_i = 0``) and renormalised to sum 1. The p-value is
    ``P(chi2_k >= X2)`` with ``k = max(bins - 1, 1)`` degrees of freedom (Pearson, K. (1900),
    "On the criterion that a given system of deviations ...", Phil. Mag. 50(302)). With large
    windows even negligible shifts are significant; read it together with an effect size.

    Args:
        ref: Reference proportions or counts.
        cur_counts: Current counts over the same bins.
        eps: Floor for reference proportions, in (0, 1).

    Returns:
        ``(statistic, p_value)``.

    Raises:
        ValueError: For shape mismatch, empty, negative, non-finite or all-zero vectors (no
            current observations), or an ``eps`` outside (0, 1).

    >>> stat, p = chi2_test(np.array([0.5, 0.5]), np.array([30, 70]))
    >>> round(stat, 4), round(p, 6)
    (16.0, 6.3e-05)
    """
    _check_eps(eps)
    r, _ = _pair(ref, cur_counts)
    observed = nonnegative_vector(cur_counts, "cur_counts")
    n_cur = float(observed.sum())
    if n_cur == 0:
        raise ValueError("cur_counts has no observations (sums to 0)")
    r = np.maximum(r, eps)
    expected = r / r.sum() * n_cur
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = max(r.size - 1, 1)
    from scipy import stats as sps  # the optional methods only: ~1 s to import

    return statistic, float(sps.chi2.sf(statistic, dof))
