"""The simulator's arrival schedule (open loop, linear ramp) and its summary arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlobs.tools.schedule import (
    Tally,
    error_class,
    expected_count,
    merge,
    percentile,
    schedule,
    send_time,
    total,
)


def test_the_seed_example_sends_600_requests_per_model_evenly() -> None:
    times = schedule(rate=5.0, duration=120.0)
    assert len(times) == 600
    assert times[0] == 0.0 and times[-1] == pytest.approx(119.8)
    gaps = {round(b - a, 9) for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {0.2}


def test_a_ramp_removes_its_triangle_and_accelerates() -> None:
    # 10/s after a 4 s ramp over 10 s: 10 * (10 - 4/2) = 80 requests, 20 of them in the ramp.
    times = schedule(rate=10.0, duration=10.0, ramp=4.0)
    assert len(times) == 80
    in_ramp = [t for t in times if t < 4.0]
    assert len(in_ramp) == 20
    gaps = [b - a for a, b in zip(in_ramp, in_ramp[1:], strict=False)]
    assert all(g2 < g1 for g1, g2 in zip(gaps, gaps[1:], strict=False))  # ever faster
    after = [t for t in times if t >= 4.0]
    assert after[0] == pytest.approx(4.0)
    assert {round(b - a, 9) for a, b in zip(after, after[1:], strict=False)} == {0.1}


def test_a_ramp_longer_than_the_run_only_climbs() -> None:
    # N(t) = rate t^2 / (2 ramp): 8/s, ramp 20 s, 10 s -> 8 * 100 / 40 = 20 requests.
    assert len(schedule(rate=8.0, duration=10.0, ramp=20.0)) == 20
    assert expected_count(10.0, 8.0, 20.0) == pytest.approx(20.0)


@given(
    rate=st.floats(0.1, 500),
    ramp=st.floats(0, 60),
    k=st.integers(0, 10_000),
)
def test_send_time_inverts_the_expected_count(rate: float, ramp: float, k: int) -> None:
    assert expected_count(send_time(k, rate, ramp), rate, ramp) == pytest.approx(k, abs=1e-6)


@given(rate=st.floats(0.1, 200), duration=st.floats(0, 120), ramp=st.floats(0, 60))
def test_every_send_time_is_inside_the_run_and_ordered(
    rate: float, duration: float, ramp: float
) -> None:
    times = schedule(rate, duration, ramp)
    assert len(times) == math.ceil(expected_count(duration, rate, ramp) - 1e-9)
    assert all(0 <= t < duration + 1e-9 for t in times)
    assert times == sorted(times)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        schedule(rate=0.0, duration=10.0)
    with pytest.raises(ValueError, match="ramp"):
        schedule(rate=1.0, duration=10.0, ramp=-1.0)
    with pytest.raises(ValueError, match="duration"):
        schedule(rate=1.0, duration=-1.0)


def test_merge_interleaves_models_in_time_order() -> None:
    plan = merge({"fraud": [0.0, 0.5, 1.0], "price": [0.25, 0.75]})
    assert [(t, m) for t, m, _ in plan] == [
        (0.0, "fraud"), (0.25, "price"), (0.5, "fraud"), (0.75, "price"), (1.0, "fraud"),
    ]  # fmt: skip
    assert [i for _, m, i in plan if m == "fraud"] == [0, 1, 2]


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_errors_are_classed_and_tallies_add_up() -> None:
    assert [error_class(s) for s in (None, 200, 201, 404, 422, 500, 503)] == [
        "connection", None, None, "4xx", "4xx", "5xx", "5xx",
    ]  # fmt: skip
    a, b = Tally(planned=4), Tally(planned=2)
    for status, seconds in ((200, 0.010), (200, 0.030), (422, 0.001), (None, 10.0)):
        a.record(status, seconds)
    b.record(503, 0.002)
    b.dropped, b.labels_sent = 1, 3
    assert (a.sent, a.ok, a.failed) == (4, 2, 2)
    assert a.errors == {"connection": 1, "4xx": 1, "5xx": 0}
    assert a.latencies == [0.010, 0.030]  # failures do not count into latency
    assert a.p50() == 0.010 and a.p99() == 0.030
    t = total([a, b])
    assert (t.planned, t.sent, t.ok, t.failed, t.dropped, t.labels_sent) == (6, 5, 2, 3, 1, 3)
    assert t.errors == {"connection": 1, "4xx": 1, "5xx": 1}
