"""The traffic simulator's arithmetic: an open-loop arrival schedule with a linear ramp, and the
tallies its summary reports. Pure: no clock, no I/O, so the tests can check every number.

The rate climbs linearly from 0 to ``rate`` over ``ramp`` seconds, then holds. The expected number
of requests sent by time ``t`` is the integral of the rate::

    N(t) = rate * t**2 / (2 * ramp)            for t <= ramp
    N(t) = rate * ramp / 2 + rate * (t - ramp)   after

and request ``k`` (0-based) is sent at ``N^-1(k)``: the first at t = 0, the next ones where the
expected count reaches each whole number. An open loop: send times never wait for answers.

>>> schedule(rate=2.0, duration=2.0)
[0.0, 0.5, 1.0, 1.5]
>>> [round(t, 3) for t in schedule(rate=2.0, duration=3.0, ramp=2.0)]
[0.0, 1.414, 2.0, 2.5]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

ERROR_CLASSES = ("connection", "4xx", "5xx")


def expected_count(t: float, rate: float, ramp: float = 0.0) -> float:
    """N(t): requests the schedule has sent by time ``t`` (fractional)."""
    _check(rate, ramp)
    if t <= 0:
        return 0.0
    if ramp <= 0 or t >= ramp:
        return rate * (t - ramp / 2) if ramp > 0 else rate * t
    return rate * t * t / (2 * ramp)


def send_time(k: float, rate: float, ramp: float = 0.0) -> float:
    """N^-1(k): when the schedule sends request ``k`` (0-based)."""
    _check(rate, ramp)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    in_ramp = rate * ramp / 2
    if ramp > 0 and k < in_ramp:
        return math.sqrt(2 * ramp * k / rate)
    return ramp + (k - in_ramp) / rate


def schedule(rate: float, duration: float, ramp: float = 0.0) -> list[float]:
    """Send times (seconds from the start) of every request in ``[0, duration)``.

    Their number is ``ceil(N(duration))``: 600 for 5 requests/s over 120 s without a ramp, and
    ``rate * ramp / 2`` fewer with one (the ramp's missing triangle).
    """
    if duration < 0:
        raise ValueError(f"duration must be >= 0, got {duration}")
    n = math.ceil(expected_count(duration, rate, ramp) - 1e-9)
    return [send_time(k, rate, ramp) for k in range(n)]


def merge(per_model: Mapping[str, Sequence[float]]) -> list[tuple[float, str, int]]:
    """One time-ordered stream of ``(time, model, index)`` from each model's send times."""
    streams = [[(t, name, i) for i, t in enumerate(times)] for name, times in per_model.items()]
    return list(heapq.merge(*streams))


def _check(rate: float, ramp: float) -> None:
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if ramp < 0:
        raise ValueError(f"ramp must be >= 0, got {ramp}")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (``q`` in [0, 100]): the smallest value with at least q% of
    the values at or below it; None without values.

    >>> percentile([4.0, 1.0, 3.0, 2.0], 50)
    2.0
    >>> percentile([4.0, 1.0, 3.0, 2.0], 99)
    4.0
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def error_class(status: int | None) -> str | None:
    """``connection`` (no answer), ``4xx``, ``5xx``, or None for a success."""
    if status is None:
        return "connection"
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    return None


@dataclass
class Tally:
    """What happened to one model's requests."""

    planned: int = 0
    sent: int = 0
    ok: int = 0
    dropped: int = 0  # not sent: the in-flight limit was reached at its send time
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_CLASSES, 0))
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    labels_sent: int = 0
    label_errors: int = 0

    def record(self, status: int | None, seconds: float) -> None:
        """One answered (or failed) request."""
        self.sent += 1
        cls = error_class(status)
        if cls is None:
            self.ok += 1
            self.latencies.append(seconds)
        else:
            self.errors[cls] += 1

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def p50(self) -> float | None:
        return percentile(self.latencies, 50)

    def p99(self) -> float | None:
        return percentile(self.latencies, 99)


def total(tallies: Iterable[Tally]) -> Tally:
    """All models' tallies added up."""
    out = Tally()
    for t in tallies:
        out.planned += t.planned
        out.sent += t.sent
        out.ok += t.ok
        out.dropped += t.dropped
        out.labels_sent += t.labels_sent
        out.label_errors += t.label_errors
        out.latencies.extend(t.latencies)
        for k, v in t.errors.items():
            out.errors[k] = out.errors.get(k, 0) + v
    return out
