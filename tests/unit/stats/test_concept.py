from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlobs.stats import (
    BernoulliCusum,
    ConceptDriftDetector,
    CusumDetector,
    ResidualCusum,
    detector_for_classifier,
    detector_for_regressor,
    detector_from_state,
)

W1 = math.log(0.3 / 0.2)  # ln 1.5 = 0.405465: an error, p0 = 0.2 against p1 = 0.3
W0 = math.log(0.7 / 0.8)  # ln 0.875 = -0.133531: a right prediction


# ------------------------------------------------------------------------- known answers


def test_bernoulli_cusum_known_steps() -> None:
    d = BernoulliCusum(p0=0.2, p1=0.3, threshold=1.0)
    #  x:  1        1        0        1
    #  S:  0.405465 0.810930 0.677399 1.082864 > 1: the alarm
    assert [d.update(x) for x in (1.0, 1.0, 0.0)] == [False, False, False]
    assert d.statistic == pytest.approx(2 * W1 + W0)
    assert d.statistic == pytest.approx(0.677399, abs=1e-6)
    assert not d.drift_detected
    assert d.update(1.0) is True
    assert d.statistic == pytest.approx(1.082864, abs=1e-6)
    assert (d.drift_detected, d.alarm_at, d.n) == (True, 4, 4)


def test_bernoulli_cusum_is_floored_at_zero() -> None:
    d = BernoulliCusum(p0=0.2, p1=0.3, threshold=5.0)
    d.update(1.0)  # 0.405465
    for _ in range(3):  # 0.405465 - 3 * 0.133531 = 0.004872
        d.update(0.0)
    assert d.statistic == pytest.approx(W1 + 3 * W0)
    d.update(0.0)  # would be -0.128659: floored
    assert d.statistic == 0.0
    d.update(1.0)  # starts again from 0, not from the negative sum
    assert d.statistic == pytest.approx(W1)


def test_alarm_fires_once_then_stays() -> None:
    d = BernoulliCusum(p0=0.2, p1=0.3, threshold=1.0)
    fired = [d.update(1.0) for _ in range(10)]
    # ln 1.5 per error: 3 * 0.405465 = 1.216 is the first sum above 1
    assert fired == [False, False, True] + [False] * 7
    assert d.drift_detected and d.alarm_at == 3 and d.n == 10
    for _ in range(100):  # the statistic falls back to 0; the alarm stays until reset
        assert d.update(0.0) is False
    assert d.statistic == 0.0
    assert d.drift_detected


def test_residual_cusum_known_steps() -> None:
    # rho = 1.25: llr = z^2 * (1 - 1/1.5625) / 2 - ln 1.25 = 0.18 z^2 - 0.223144
    d = ResidualCusum(scale=2.0, rmse_ratio=1.25, threshold=1.0)
    assert d.update(4.0) is False  # z = 2: 0.72 - 0.223144 = 0.496856
    assert d.statistic == pytest.approx(0.496856, abs=1e-6)
    assert d.update(0.0) is False  # 0.496856 - 0.223144 = 0.273713
    assert d.statistic == pytest.approx(0.273713, abs=1e-6)
    assert d.update(-10.0) is True  # z = -5, z^2 = 25 winsorised to 9: + 1.62 - 0.223144
    assert d.statistic == pytest.approx(1.670569, abs=1e-6)
    assert d.alarm_at == 3


def test_residual_cusum_winsorises_at_clip() -> None:
    # the default clip is 3: any |z| >= 3 adds the same amount
    a = (1 - 1 / 1.15**2) / 2 * 9 - math.log(1.15)
    for r in (3.0, 4.0, -50.0, 1e12):
        d = detector_for_regressor(1.0)
        d.update(r)
        assert d.statistic == pytest.approx(a)


def test_residuals_scale_by_the_holdout_rmse() -> None:
    # the same stream in other units gives the same statistic
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.3, 500)
    small, large = detector_for_regressor(1.0), detector_for_regressor(45_000.0)
    for v in z:
        small.update(float(v))
        large.update(float(v) * 45_000.0)
    assert large.statistic == pytest.approx(small.statistic)
    assert large.alarm_at == small.alarm_at


# ------------------------------------------------------------------------- factories


def test_detector_for_classifier_parameters() -> None:
    d = detector_for_classifier(0.22)
    assert isinstance(d, BernoulliCusum)
    assert d.kind == "bernoulli_cusum"
    assert (d.p0, d.p1, d.threshold) == pytest.approx((0.22, 0.30, 10.0))


@pytest.mark.parametrize(
    ("rate", "p0", "p1"), [(0.0, 0.001, 0.081), (1.0, 0.9, 0.98), (0.95, 0.9, 0.98)]
)
def test_detector_for_classifier_clips_the_rate(rate: float, p0: float, p1: float) -> None:
    d = detector_for_classifier(rate)
    assert (d.p0, d.p1) == pytest.approx((p0, p1))


def test_a_holdout_without_errors_still_gives_a_working_detector() -> None:
    d = detector_for_classifier(0.0)
    for _ in range(5_000):
        assert d.update(0.0) is False
    # ln(0.081 / 0.001) = 4.39 per error: three errors in a row raise it
    assert [d.update(1.0) for _ in range(3)] == [False, False, True]


def test_detector_for_regressor_parameters() -> None:
    d = detector_for_regressor(46_000.0)
    assert isinstance(d, ResidualCusum)
    assert d.kind == "residual_cusum"
    assert (d.scale, d.rmse_ratio, d.clip, d.threshold) == pytest.approx(
        (46_000.0, 1.15, 3.0, 10.0)
    )


@pytest.mark.parametrize("rate", [-0.1, 1.1, math.nan])
def test_detector_for_classifier_rejects_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError, match="holdout_error_rate"):
        detector_for_classifier(rate)


@pytest.mark.parametrize("rmse", [0.0, -1.0, math.nan, math.inf])
def test_detector_for_regressor_rejects_bad_rmse(rmse: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        detector_for_regressor(rmse)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BernoulliCusum(p0=0.3, p1=0.2),
        lambda: BernoulliCusum(p0=0.0, p1=0.2),
        lambda: BernoulliCusum(p0=0.2, p1=1.0),
        lambda: BernoulliCusum(p0=0.2, p1=0.3, threshold=0.0),
        lambda: BernoulliCusum(p0=0.2, p1=0.3, threshold=math.inf),
        lambda: ResidualCusum(scale=1.0, rmse_ratio=1.0),
        lambda: ResidualCusum(scale=1.0, clip=0.0),
        lambda: ResidualCusum(scale=1.0, clip=math.inf),
        lambda: detector_for_classifier(0.2, shift=0.0),
    ],
)
def test_constructors_reject_bad_parameters(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("value", [0.5, 2.0, -1.0, math.nan])
def test_bernoulli_rejects_values_other_than_0_and_1(value: float) -> None:
    d = detector_for_classifier(0.2)
    d.update(1.0)
    before = d.to_state()
    with pytest.raises(ValueError, match="0 or 1"):
        d.update(value)
    assert d.to_state() == before  # a rejected value leaves no trace


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_residual_rejects_non_finite_values(value: float) -> None:
    d = detector_for_regressor(1.0)
    with pytest.raises(ValueError, match="finite"):
        d.update(value)
    assert d.n == 0


def test_booleans_are_accepted_as_errors() -> None:
    d = BernoulliCusum(p0=0.2, p1=0.3)
    d.update(True)
    d.update(False)
    assert d.statistic == pytest.approx(W1 + W0)


def test_detectors_satisfy_the_protocol() -> None:
    for d in (detector_for_classifier(0.2), detector_for_regressor(1.0)):
        assert isinstance(d, ConceptDriftDetector)
        assert isinstance(d, CusumDetector)


# ------------------------------------------------------------------------- state


def test_state_is_plain_json_with_params_and_running_state() -> None:
    d = detector_for_classifier(0.2)
    for x in (1.0, 1.0, 0.0):
        d.update(x)
    state = json.loads(json.dumps(d.to_state(), allow_nan=False))
    assert state == {
        "kind": "bernoulli_cusum",
        "version": 1,
        "params": {"threshold": 10.0, "p0": 0.2, "p1": pytest.approx(0.28)},
        "n": 3,
        "statistic": pytest.approx(2 * math.log(1.4) + math.log(0.72 / 0.8)),
        "alarm_at": None,
    }
    r = detector_for_regressor(2.5)
    assert json.loads(json.dumps(r.to_state(), allow_nan=False))["params"] == {
        "threshold": 10.0,
        "scale": 2.5,
        "rmse_ratio": 1.15,
        "clip": 3.0,
    }


def test_detector_from_state_dispatches_on_kind() -> None:
    b, r = detector_for_classifier(0.2), detector_for_regressor(3.0)
    assert type(detector_from_state(b.to_state())) is BernoulliCusum
    assert type(detector_from_state(r.to_state())) is ResidualCusum


def test_state_after_an_alarm_survives() -> None:
    d = BernoulliCusum(p0=0.2, p1=0.3, threshold=1.0)
    for _ in range(5):
        d.update(1.0)
    restored = detector_from_state(json.loads(json.dumps(d.to_state())))
    assert restored.drift_detected and restored.alarm_at == 3 and restored.n == 5
    assert restored.update(1.0) is False  # already in alarm: it does not fire again


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "ddm"}, "unknown"),
        ({"kind": None}, "unknown"),
        ({"version": 2}, "version"),
        ({"n": -1}, "malformed"),
        ({"statistic": -0.5}, "malformed"),
        ({"statistic": math.nan}, "malformed"),
        ({"alarm_at": 7}, "malformed"),
        ({"params": {"p0": 0.2}}, "malformed"),
        ({"params": {"p0": 0.4, "p1": 0.3, "threshold": 10.0}}, "p0 < p1"),
    ],
)
def test_detector_from_state_rejects_bad_states(change: dict[str, object], message: str) -> None:
    d = detector_for_classifier(0.2)
    for _ in range(5):
        d.update(0.0)
    with pytest.raises(ValueError, match=message):
        detector_from_state({**d.to_state(), **change})


def test_from_state_of_the_wrong_class_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 'residual_cusum'"):
        ResidualCusum.from_state(detector_for_classifier(0.2).to_state())


def test_reset_returns_to_the_start() -> None:
    d = BernoulliCusum(p0=0.2, p1=0.3, threshold=1.0)
    for _ in range(5):
        d.update(1.0)
    d.reset()
    assert (d.n, d.statistic, d.drift_detected, d.alarm_at) == (0, 0.0, False, None)
    assert d.to_state() == BernoulliCusum(p0=0.2, p1=0.3, threshold=1.0).to_state()
    assert [d.update(1.0) for _ in range(3)] == [False, False, True]  # it can fire again


# ------------------------------------------------------------------------- properties

_errors = st.lists(st.sampled_from([0.0, 1.0]), max_size=300)
_residuals = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), max_size=300
)
_rates = st.floats(min_value=0.0, max_value=1.0)
_rmses = st.floats(min_value=1e-3, max_value=1e6)


def _classifier(rate: float) -> CusumDetector:
    return detector_for_classifier(rate, threshold=3.0)  # a low threshold: alarms do happen


def _regressor(rmse: float) -> CusumDetector:
    return detector_for_regressor(rmse, threshold=3.0)


_cases = st.one_of(
    st.tuples(st.builds(_classifier, _rates), _errors),
    st.tuples(st.builds(_regressor, _rmses), _residuals),
)


@given(_cases)
def test_statistic_is_never_negative_and_n_counts(case: tuple[CusumDetector, list[float]]) -> None:
    d, values = case
    fired = 0
    for v in values:
        fired += d.update(v)
        assert d.statistic >= 0.0
        assert math.isfinite(d.statistic)
    assert d.n == len(values)
    # True exactly once, on the update that raised the alarm, and the alarm matches
    assert fired == int(d.drift_detected)
    if d.alarm_at is not None:
        assert 1 <= d.alarm_at <= d.n


@given(_cases, st.integers(min_value=0, max_value=300))
def test_state_round_trip_mid_stream_continues_identically(
    case: tuple[CusumDetector, list[float]], cut: int
) -> None:
    d, values = case
    cut = min(cut, len(values))
    for v in values[:cut]:
        d.update(v)
    restored = detector_from_state(json.loads(json.dumps(d.to_state(), allow_nan=False)))
    assert restored.to_state() == d.to_state()
    for v in values[cut:]:
        assert restored.update(v) == d.update(v)
        assert restored.statistic == d.statistic
    assert restored.to_state() == d.to_state()


@given(_rates, st.integers(min_value=0, max_value=2_000))
def test_a_stream_of_right_predictions_never_alarms(rate: float, n: int) -> None:
    d = detector_for_classifier(rate)
    for _ in range(n):
        assert d.update(0.0) is False
    assert d.statistic == 0.0


@given(_rmses, st.integers(min_value=0, max_value=2_000))
def test_a_stream_of_perfect_predictions_never_alarms(rmse: float, n: int) -> None:
    d = detector_for_regressor(rmse)
    for _ in range(n):
        assert d.update(0.0) is False
    assert d.statistic == 0.0


@given(_cases)
def test_reset_clears_everything(case: tuple[CusumDetector, list[float]]) -> None:
    d, values = case
    fresh = d.to_state()
    for v in values:
        d.update(v)
    d.reset()
    assert d.to_state() == fresh


# ------------------------------------------------------------------------- the rule
# On 20 streams of 5,000 labels without a shift at most 1 raises an alarm; after a shift of the
# error rate by +0.10, or of the residuals' scale by x1.3, the alarm comes within 1,000 labels on
# at least 19 of 20. The shift starts at label 0 (the worst case for a CUSUM, whose statistic
# only starts higher later on). Seeds differ per stream.

STREAMS, IN_CONTROL, WINDOW = 20, 5_000, 1_000


def _alarm_at(d: CusumDetector, values: np.ndarray) -> int | None:
    for v in values.tolist():
        d.update(v)
        if d.drift_detected:
            break
    return d.alarm_at


def _rule(
    make: Callable[[], CusumDetector], draw: Callable[[np.random.Generator, int, bool], np.ndarray]
) -> tuple[int, list[int | None]]:
    false_alarms = sum(
        _alarm_at(make(), draw(np.random.default_rng(1_000 + i), IN_CONTROL, False)) is not None
        for i in range(STREAMS)
    )
    delays = [
        _alarm_at(make(), draw(np.random.default_rng(2_000 + i), WINDOW, True))
        for i in range(STREAMS)
    ]
    return false_alarms, delays


@pytest.mark.parametrize("p0", [0.05, 0.22])
def test_rule_on_bernoulli_errors(p0: float) -> None:
    # 0.22 is the churn model's error rate. Higher rates are noisier: from about 0.35 on, 1% of
    # the shifted streams miss the 1,000-label window (see the module's table).
    def draw(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
        return (rng.random(n) < p0 + (0.10 if shifted else 0.0)).astype(np.float64)

    false_alarms, delays = _rule(lambda: detector_for_classifier(p0), draw)
    assert false_alarms <= 1
    assert sum(d is not None for d in delays) >= 19, delays


@pytest.mark.parametrize("dof", [None, 5])
def test_rule_on_residuals(dof: int | None) -> None:
    # normal residuals, and Student-t(5) ones (kurtosis 9, like the price model's), both at unit
    # RMSE in control; the holdout RMSE is 1 (an in-control RMSE of 1,000 price units and the
    # detector's own scaling are tested above).
    def draw(rng: np.random.Generator, n: int, shifted: bool) -> np.ndarray:
        z = rng.standard_normal(n) if dof is None else rng.standard_t(dof, n) / math.sqrt(5 / 3)
        return np.asarray(z * (1.3 if shifted else 1.0), dtype=np.float64)

    false_alarms, delays = _rule(lambda: detector_for_regressor(1.0), draw)
    assert false_alarms <= 1
    assert sum(d is not None for d in delays) >= 19, delays


def test_rule_margin_on_bernoulli_errors() -> None:
    # The rule's allowance of 1 in 20 is not what passes it: the per-stream rates are far below
    # 5%. Over 200 streams at most 5 (2.5%) alarm without a shift (0.3% expected per stream), and
    # at most 5 miss the shift (0.1-0.2% expected).
    p0, n = 0.22, 200
    fa = 0
    for i in range(n):
        x = (np.random.default_rng(10_000 + i).random(IN_CONTROL) < p0).astype(np.float64)
        fa += _alarm_at(detector_for_classifier(p0), x) is not None
    miss = 0
    for i in range(n):
        x = (np.random.default_rng(20_000 + i).random(WINDOW) < p0 + 0.10).astype(np.float64)
        miss += _alarm_at(detector_for_classifier(p0), x) is None
    assert fa <= 5 and miss <= 5, (fa, miss)
