"""Concept drift: one-sided CUSUM detectors over a model's stream of errors, one label at a time.

Concept drift is a change in the relation between the features and the label, which only labels
reveal: a classifier's errors become more frequent, a regressor's residuals grow. Each detector
here is a small stateful object in River's style: ``update(value)`` feeds one observation and
returns True exactly once, on the observation that raises the alarm; ``to_state()`` and
``from_state()`` carry the running state through JSON, so a restart does not forget it.

The baseline is fixed from the model's holdout, never learned from the live stream (a model
deployed into an already changed world would otherwise learn the change as normal):

* classifiers feed ``1.0`` for a wrong prediction and ``0.0`` for a right one to a Bernoulli CUSUM
  whose in-control error rate ``p0`` is the holdout error rate (``1 - accuracy``);
* regressors feed the raw residual ``actual - predicted``; the detector divides it by the
  holdout RMSE, ``z = r / rmse``, and runs a CUSUM for a rise of the residuals' scale.

Both are Page's CUSUM on a log-likelihood ratio (Page, E. S. (1954), "Continuous inspection
schemes", Biometrika 41, 100-115): ``S_0 = 0``, ``S_n = max(0, S_{n-1} + llr(x_n))``, alarm when
``S_n > h``. It is the optimal detector of a step change between two known distributions
(Lorden 1971; Moustakides 1986), which is the situation here, and its statistic is one float.

Bernoulli (Reynolds, M. R. & Stoumbos, Z. G. (1999), "A CUSUM chart for monitoring a proportion
when inspecting continuously", J. Quality Technology 31, 87-108)::

    llr(1) = ln(p1 / p0)      llr(0) = ln((1 - p1) / (1 - p0))

Residuals, the likelihood ratio of a normal scale change from 1 to ``rho`` on ``z``, with ``z**2``
winsorised at ``clip**2``::

    llr(r) = min(z**2, clip**2) * (1 - 1 / rho**2) / 2 - ln(rho)

Why these and not the textbook defaults
---------------------------------------
The rule they are tuned to (tests/unit/stats/test_concept.py on synthetic streams and
tests/unit/monitoring/test_concept_rule.py on the real models and generator): on 20 streams of
5,000 labels without a shift at most 1 raises an alarm; after a shift that raises the error rate
by 0.10 (classifiers) or the RMSE by 30% (regressors) the alarm comes within 1,000 labels on at
least 19 of 20. To pass for any seed, not a lucky one, each stream must fail with a probability of
about 1% or less. River's DDM (2 and 3 sigma after 30 samples) fires on 26-78% of streams
without a shift, and Page-Hinkley (delta 0.005, lambda 50) almost always on unscaled residuals;
DDM and HDDM also learn their baseline from the stream, so they miss a change that is present
from the start, and ADWIN spends its power on two-sided changes of any size. A CUSUM with a fixed
baseline has the smallest worst-case delay at a given false-alarm rate for the shift it is tuned
to, which is what the rule asks for.

The holdout figure is itself an estimate from about 1,000 rows: its standard error is about 0.013
on an error rate of 0.22, and about 4% on the price model's RMSE (the residuals have a kurtosis of
about 8, so squared residuals average slowly). A baseline set too low raises false alarms, one set
too high slows detection, and no threshold removes both. The detectors are therefore tuned to a
shift smaller than the rule's (``p1 = p0 + 0.08``, ``rho = 1.15``). This moves the reference
value, the level at which the statistic has no drift, below the midpoint: to ``p0 + 0.039`` for the
error rate (39% of the way to the rule's shift) and to a mean square of 1.15 (an RMSE 7% above the
baseline, before winsorising) for the residuals. That leaves room for a baseline set too low, and
the 1,000-label window still gives a statistic with a small upward drift the time to climb. In
simulations the midpoint (``p1 = p0 + 0.10``) gave more false alarms and more misses at an exact
baseline (0.49% and 0.38% against 0.29% and 0.12%, at the same ``h``); on the price model's
residuals ``rho = 1.2`` gave more false alarms at an exact baseline (0.3% against 0.1%) and more
misses with the fixture's own holdout RMSE (1.3% against 0.7%).
``h = 10`` nats makes the false-alarm probability over 5,000 in-control labels 0.3-0.7% for error
rates from 0.02 to 0.4 when the baseline is exact. For the residuals, winsorising ``z`` at 3 cuts
the per-label standard deviation of the statistic on the price model's real residuals from 2.8 to
1.6 while it keeps 86% of the shift of the mean (without it, single outliers of a heavy-tailed
stream raise false alarms: winsorised at 4 instead of 3, 8% of the in-control price streams
alarm instead of 0.1%).

Measured (numpy simulations of these recursions, 10,000 streams per cell for Bernoulli, 4,000 for
residuals; "FA" is the share of 5,000-label in-control streams that alarm, "miss" the share of
shifted streams with no alarm within 1,000 labels, the shift starting at label 0; the real
streams are the churn and price models of the test fixture on the generator's data):

=====================================  ==================  ========  ========  ===========
stream                                 baseline error      FA        miss      mean delay
=====================================  ==================  ========  ========  ===========
Bernoulli p = 0.22 (+0.10)             exact               0.29%     0.12%     370
                                       0.0125 too low      3.8%      0.00%
                                       0.0125 too high     0.00%     1.5%
Bernoulli p = 0.05 / 0.40 (+0.10)      exact               0.6/0.3%  0.0/1.2%  140/480
churn model errors (0.220 -> 0.327)    holdout 0.226       0.03%     0.08%     370
normal residuals (sigma x1.3)          exact               0.2%      0.0%      170
                                       RMSE 3% too low     4.6%      0.0%
price model residuals (RMSE x1.30)     exact               0.1%      0.0%      230
                                       RMSE 5% too low     1.7%      0.0%
                                       holdout, 6.6% high  0.0%      0.8%      380
=====================================  ==================  ========  ========  ===========

A baseline error of 0.0125 on the error rate, or of 3-5% on the RMSE, is about one standard
error of a 1,000-row holdout. Starting the shift at label 0 is the worst case for a CUSUM: the
statistic is never below 0, and its first passage above ``h`` only comes sooner from a higher
start. On seeded streams of the real-model test (20 + 20 per model, with the fixture's
models at the time of writing) no in-control stream alarms (largest statistics 6.9 for churn, 5.8
for price); after the shift churn alarms on 19 of 20 within 1,000 labels (mean 380; its shift
there is +0.102 against a baseline 0.006 too high, a miss probability of 0.4% per stream) and
price on 20 of 20 (mean 380).

Limits: the detectors are one-sided, so an improvement never alarms. From an error rate of about
0.35 on, 1% of the streams shifted by +0.10 take longer than 1,000 labels. Residuals with tails as
heavy as Student's t with 3 degrees of freedom carry most of their mean square beyond the clip,
and 80% of their 30% RMSE rises go unseen within 1,000 labels (t with 5 degrees of freedom, of
kurtosis 9 like the price model's, is fine); such a model should feed relative errors instead.
A detector stays in alarm until ``reset()``; after a retraining, build a new one from the new
holdout figures instead, since the baseline has changed.

>>> d = detector_for_classifier(0.2)
>>> [d.update(x) for x in [1.0] * 40].index(True) + 1  # a run of errors: ln(0.28/0.2) each
30
>>> d.drift_detected, d.alarm_at, d.n
(True, 30, 40)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

__all__ = [
    "CLASSIFIER_SHIFT",
    "REGRESSOR_RMSE_RATIO",
    "RESIDUAL_CLIP",
    "THRESHOLD",
    "BernoulliCusum",
    "ConceptDriftDetector",
    "CusumDetector",
    "ResidualCusum",
    "detector_for_classifier",
    "detector_for_regressor",
    "detector_from_state",
]

CLASSIFIER_SHIFT = 0.08
"""The rise of the error rate the classifier's CUSUM is tuned to (the rule's is 0.10)."""

REGRESSOR_RMSE_RATIO = 1.15
"""The rise of the residuals' scale the regressor's CUSUM is tuned to (the rule's is 1.30)."""

RESIDUAL_CLIP = 3.0
"""Scaled residuals ``|z|`` above this count as this much (winsorising against heavy tails)."""

THRESHOLD = 10.0
"""The alarm threshold ``h`` of both CUSUMs, in nats of log-likelihood ratio."""

# Holdout error rates are clipped to [_P0_MIN, _P0_MAX] before use: a holdout without a single
# error gives 0, whose log-likelihood ratio is infinite.
_P0_MIN = 0.001
_P0_MAX = 0.9
_P1_MAX = 0.99

_STATE_VERSION = 1

_D = TypeVar("_D", bound="CusumDetector")


@runtime_checkable
class ConceptDriftDetector(Protocol):
    """What the monitoring layer needs of a streaming concept-drift detector.

    A saved ``to_state()`` comes back through :func:`detector_from_state`, which dispatches on its
    ``"kind"`` to the class's ``from_state``.
    """

    @property
    def kind(self) -> str:
        """The detector's name in its state, e.g. ``"bernoulli_cusum"``."""
        ...

    @property
    def n(self) -> int:
        """Observations seen since the last reset."""
        ...

    @property
    def drift_detected(self) -> bool:
        """Whether the alarm has been raised (it stays raised until ``reset``)."""
        ...

    @property
    def statistic(self) -> float:
        """The current CUSUM statistic."""
        ...

    @property
    def threshold(self) -> float:
        """The statistic's alarm threshold."""
        ...

    def update(self, value: float) -> bool:
        """Feed one observation; True exactly on the one that raises the alarm."""
        ...

    def reset(self) -> None:
        """Back to the start: no observations, statistic 0, no alarm."""
        ...

    def to_state(self) -> dict[str, Any]:
        """Parameters and running state as a JSON-serialisable dict."""
        ...


class CusumDetector(ABC):
    """Page's CUSUM on a per-observation log-likelihood ratio; subclasses define the ratio.

    The statistic keeps following the stream after the alarm (for a gauge), but ``update`` returns
    True only once, and ``drift_detected`` stays True until ``reset``.
    """

    kind: ClassVar[str]

    def __init__(self, threshold: float) -> None:
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be finite and > 0, got {threshold}")
        self._threshold = float(threshold)
        self._n = 0
        self._s = 0.0
        self._alarm_at: int | None = None

    @abstractmethod
    def _llr(self, value: float) -> float:
        """The log-likelihood ratio of one observation (validating it)."""

    @abstractmethod
    def _params(self) -> dict[str, float]:
        """The constructor's keyword arguments, for ``to_state``."""

    # ------------------------------------------------------------------ the stream

    def update(self, value: float) -> bool:
        """Feed one observation; True exactly on the one that raises the alarm.

        Raises:
            ValueError: the value is not a valid observation for this detector (the state is
                left as it was).
        """
        step = self._llr(value)
        self._n += 1
        self._s = max(0.0, self._s + step)
        if self._alarm_at is None and self._s > self._threshold:
            self._alarm_at = self._n
            return True
        return False

    def reset(self) -> None:
        """Back to the start (after an alert is resolved or the model retrained)."""
        self._n = 0
        self._s = 0.0
        self._alarm_at = None

    @property
    def n(self) -> int:
        """Observations seen since the last reset."""
        return self._n

    @property
    def statistic(self) -> float:
        """The current CUSUM statistic ``S_n`` (>= 0, in nats)."""
        return self._s

    @property
    def threshold(self) -> float:
        """The alarm threshold ``h`` on the statistic."""
        return self._threshold

    @property
    def drift_detected(self) -> bool:
        """Whether the alarm has been raised since the last reset."""
        return self._alarm_at is not None

    @property
    def alarm_at(self) -> int | None:
        """The observation (1-based, since the last reset) that raised the alarm, or None."""
        return self._alarm_at

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        """Parameters and running state as a JSON-serialisable dict.

        Floats survive a JSON round trip exactly, so a detector rebuilt by ``from_state`` continues
        as if it had never stopped.
        """
        return {
            "kind": self.kind,
            "version": _STATE_VERSION,
            "params": {"threshold": self._threshold, **self._params()},
            "n": self._n,
            "statistic": self._s,
            "alarm_at": self._alarm_at,
        }

    @classmethod
    def from_state(cls: type[_D], state: Mapping[str, Any]) -> _D:
        """The detector ``to_state`` described, in the same running state.

        Raises:
            ValueError: the state is of another kind, another version, or malformed.
        """
        if state.get("kind") != cls.kind:
            raise ValueError(f"state is of kind {state.get('kind')!r}, expected {cls.kind!r}")
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported state version {state.get('version')!r}")
        try:
            detector = cls(**state["params"])
            n, s, alarm_at = int(state["n"]), float(state["statistic"]), state["alarm_at"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed {cls.kind} state: {exc}") from exc
        if n < 0 or not (math.isfinite(s) and s >= 0):
            raise ValueError(f"malformed {cls.kind} state: n={n}, statistic={s}")
        if alarm_at is not None and not 1 <= int(alarm_at) <= n:
            raise ValueError(f"malformed {cls.kind} state: alarm_at={alarm_at} with n={n}")
        detector._n, detector._s = n, s
        detector._alarm_at = None if alarm_at is None else int(alarm_at)
        return detector

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return (
            f"{type(self).__name__}({params}, threshold={self._threshold!r}; "
            f"n={self._n}, statistic={self._s:.4g}, alarm_at={self._alarm_at})"
        )


class BernoulliCusum(CusumDetector):
    """CUSUM for a rise of a Bernoulli rate from ``p0`` to ``p1``: feed 1.0 (an error) or 0.0.

    >>> d = BernoulliCusum(p0=0.2, p1=0.3, threshold=1.0)
    >>> [d.update(x) for x in (1.0, 1.0, 0.0, 1.0)]
    [False, False, False, True]
    >>> round(d.statistic, 6)  # 3 ln(1.5) + ln(0.875)
    1.082864
    """

    kind: ClassVar[str] = "bernoulli_cusum"

    def __init__(self, p0: float, p1: float, threshold: float = THRESHOLD) -> None:
        if not 0.0 < p0 < p1 < 1.0:
            raise ValueError(f"need 0 < p0 < p1 < 1, got p0={p0}, p1={p1}")
        super().__init__(threshold)
        self.p0, self.p1 = float(p0), float(p1)
        self._w1 = math.log(self.p1 / self.p0)
        self._w0 = math.log((1.0 - self.p1) / (1.0 - self.p0))

    def _llr(self, value: float) -> float:
        if value == 1:
            return self._w1
        if value == 0:
            return self._w0
        raise ValueError(f"a Bernoulli observation must be 0 or 1, got {value!r}")

    def _params(self) -> dict[str, float]:
        return {"p0": self.p0, "p1": self.p1}


class ResidualCusum(CusumDetector):
    """CUSUM for a rise of the residuals' scale: feed raw residuals ``actual - predicted``.

    Each residual is divided by ``scale`` (the holdout RMSE), its square winsorised at
    ``clip**2``, and scored by the normal log-likelihood ratio of standard deviation
    ``rmse_ratio`` against 1. A bias of the residuals raises their mean square too, so it is
    caught as well.

    >>> d = ResidualCusum(scale=2.0, rmse_ratio=1.25, threshold=1.0)
    >>> [d.update(r) for r in (4.0, -10.0)]  # z**2 = 4, then 25 winsorised to 9
    [False, True]
    >>> round(d.statistic, 6)  # (4 + 9) * (1 - 0.64) / 2 - 2 ln(1.25)
    1.893713
    """

    kind: ClassVar[str] = "residual_cusum"

    def __init__(
        self,
        scale: float,
        rmse_ratio: float = REGRESSOR_RMSE_RATIO,
        threshold: float = THRESHOLD,
        clip: float = RESIDUAL_CLIP,
    ) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be finite and > 0, got {scale}")
        if not (math.isfinite(rmse_ratio) and rmse_ratio > 1):
            raise ValueError(f"rmse_ratio must be finite and > 1, got {rmse_ratio}")
        if not (math.isfinite(clip) and clip > 0):
            raise ValueError(f"clip must be finite and > 0, got {clip}")
        super().__init__(threshold)
        self.scale, self.rmse_ratio, self.clip = float(scale), float(rmse_ratio), float(clip)
        self._a = (1.0 - 1.0 / self.rmse_ratio**2) / 2.0
        self._b = math.log(self.rmse_ratio)
        self._z2_max = self.clip**2

    def _llr(self, value: float) -> float:
        r = float(value)
        if not math.isfinite(r):
            raise ValueError(f"a residual must be finite, got {value!r}")
        z = r / self.scale
        return self._a * min(z * z, self._z2_max) - self._b

    def _params(self) -> dict[str, float]:
        return {"scale": self.scale, "rmse_ratio": self.rmse_ratio, "clip": self.clip}


_KINDS: Mapping[str, type[CusumDetector]] = {
    BernoulliCusum.kind: BernoulliCusum,
    ResidualCusum.kind: ResidualCusum,
}


def detector_for_classifier(
    holdout_error_rate: float, *, shift: float = CLASSIFIER_SHIFT, threshold: float = THRESHOLD
) -> BernoulliCusum:
    """The concept-drift detector of a classifier with this error rate on its holdout.

    Feed it 1.0 for each wrong prediction and 0.0 for each right one. The rate is clipped to
    [0.001, 0.9] (a holdout without errors says the rate is small, not 0); the detector is tuned
    to a rise of ``shift``.

    Raises:
        ValueError: the rate is not in [0, 1], or ``shift`` not in (0, 1).
    """
    if not 0.0 <= holdout_error_rate <= 1.0:  # also rejects NaN
        raise ValueError(f"holdout_error_rate must be in [0, 1], got {holdout_error_rate}")
    if not 0.0 < shift < 1.0:
        raise ValueError(f"shift must be in (0, 1), got {shift}")
    p0 = min(max(float(holdout_error_rate), _P0_MIN), _P0_MAX)
    return BernoulliCusum(p0=p0, p1=min(p0 + shift, _P1_MAX), threshold=threshold)


def detector_for_regressor(
    holdout_rmse: float, *, rmse_ratio: float = REGRESSOR_RMSE_RATIO, threshold: float = THRESHOLD
) -> ResidualCusum:
    """The concept-drift detector of a regressor with this RMSE on its holdout.

    Feed it the raw residual ``actual - predicted`` of each labelled prediction, in the target's
    units: it scales them by ``holdout_rmse`` itself.

    Raises:
        ValueError: ``holdout_rmse`` is not finite and > 0.
    """
    return ResidualCusum(scale=holdout_rmse, rmse_ratio=rmse_ratio, threshold=threshold)


def detector_from_state(state: Mapping[str, Any]) -> CusumDetector:
    """Rebuild a detector from ``to_state`` output, dispatching on ``state["kind"]``.

    Raises:
        ValueError: unknown kind, or a malformed state.
    """
    kind = state.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ValueError(f"unknown concept-drift detector kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[kind].from_state(state)
