"""Window counts: live counting equals frame counting, windows merge by addition, memory is bounded."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import sample_records
from mlobs.data import DATASETS, DriftSpec, generate
from mlobs.monitoring.profiles import OUTPUT, ReferenceProfile
from mlobs.monitoring.windows import LiveWindow, WindowCounts

SPEC = DATASETS["churn"]


def _profile() -> ReferenceProfile:
    ref = generate("churn", 5_000, seed=1)
    return ReferenceProfile.build(
        ref, features=SPEC.feature_names, categorical_features=SPEC.categorical,
        output=np.linspace(0, 1, 5_000), model_name="churn",
    )  # fmt: skip


def _records(df: pd.DataFrame) -> list[dict[str, object]]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def test_live_counts_equal_frame_counts() -> None:
    profile = _profile()
    df = generate("churn", 2_000, seed=2, drift=DriftSpec.preset("churn", 0.6))
    df = df[SPEC.feature_names]
    outputs = np.random.default_rng(0).random(len(df))
    live = LiveWindow(profile)
    for rec, out in zip(_records(df), outputs, strict=True):
        live.add(rec, float(out))
    a = live.take()
    b = WindowCounts.from_frame(profile, df, outputs)
    assert a.n_rows == b.n_rows == 2_000
    for name in [*SPEC.feature_names, OUTPUT]:
        np.testing.assert_array_equal(a.counts[name], b.counts[name], err_msg=name)
    assert a.missing == b.missing
    assert a.out_of_range == b.out_of_range
    assert sum(a.out_of_range.values()) > 0  # the drift pushed values past the reference range
    assert a.counts["payment_method"][-1] > 0  # unseen categories in their bucket
    assert live.n_rows == 0  # take() starts afresh


def test_windows_merge_by_adding_counts() -> None:
    profile = _profile()
    df = generate("churn", 3_000, seed=3)[SPEC.feature_names]
    whole = WindowCounts.from_frame(profile, df)
    parts = WindowCounts.from_frame(profile, df.iloc[:1_234]).merge(
        WindowCounts.from_frame(profile, df.iloc[1_234:])
    )
    assert parts.n_rows == whole.n_rows
    for name in SPEC.feature_names:
        np.testing.assert_array_equal(parts.counts[name], whole.counts[name])
    assert parts.missing == whole.missing


def test_restore_puts_taken_counts_back() -> None:
    profile = _profile()
    live = LiveWindow(profile)
    for rec in sample_records("churn", 50, seed=4):
        live.add(rec, 0.5)
    taken = live.take()
    live.restore(taken)
    again = live.take()
    assert again.n_rows == 50
    for name in SPEC.feature_names:
        np.testing.assert_array_equal(again.counts[name], taken.counts[name])


def test_duplicates_are_counted() -> None:
    profile = _profile()
    live = LiveWindow(profile)
    recs = sample_records("churn", 10, seed=5)
    for rec in recs + recs[:3]:
        live.add(rec, None)
    assert live.take().duplicates == 3
    frame = pd.DataFrame(recs + recs[:3])
    assert WindowCounts.from_frame(profile, frame).duplicates == 3


def test_window_memory_is_bounded_by_features_and_bins() -> None:
    profile = _profile()
    live = LiveWindow(profile)
    recs = sample_records("churn", 1_000, seed=6)
    for i in range(20):
        for rec in recs:
            live.add(rec, 0.1 * (i % 10))
    taken = live.take()
    assert taken.n_rows == 20_000
    expected = sum(p.n_bins for p in profile.features.values()) + profile.output.n_bins  # type: ignore[union-attr]
    assert taken.nbytes() == expected * 8


def test_counts_and_outcomes_cross_a_process_boundary_unchanged() -> None:
    """What a push sends to the window process, and what its outcome brings back, survive JSON
    (orjson, as the pipe carries them) exactly: counts, a result's report and its time."""
    import orjson

    from mlobs.monitoring.live_windows import (
        PushOutcome,
        counts_from_dict,
        counts_to_dict,
        drift_result,
    )
    from mlobs.monitoring.quality import assess

    profile = _profile()
    df = generate("churn", 700, seed=3, drift=DriftSpec.preset("churn", 0.5))[SPEC.feature_names]
    live = LiveWindow(profile)
    for rec in _records(df):
        live.add(rec, 0.7)
    counts = live.take()
    back = counts_from_dict(orjson.loads(orjson.dumps(counts_to_dict(counts))))
    assert back.n_rows == counts.n_rows and back.duplicates == counts.duplicates
    assert back.missing == counts.missing and back.out_of_range == counts.out_of_range
    assert set(back.counts) == set(counts.counts)
    for name, v in counts.counts.items():
        assert back.counts[name].dtype == np.int64
        np.testing.assert_array_equal(back.counts[name], v, err_msg=name)

    from datetime import datetime, timezone

    from mlobs.monitoring.drift_detector import DriftDetector

    report = DriftDetector.from_profile(profile, min_samples=100).evaluate(counts)
    result = drift_result("churn", "live", 7, datetime(2026, 11, 28, 5, 0, 1, 250_000,
                          tzinfo=timezone.utc), report, assess(profile, counts))  # fmt: skip
    due = datetime(2026, 11, 28, 5, 5, tzinfo=timezone.utc)
    out = PushOutcome("churn", window_rows=700, due_at=due, results=[result])
    again = PushOutcome.from_dict(orjson.loads(orjson.dumps(out.to_dict())))
    assert again == out


def test_profile_versions_built_in_turn_order_by_age() -> None:
    """Shared windows discard counts on an older profile: a profile replaced within the same
    second must still order after the one it replaces."""
    from mlobs.monitoring.drift_monitor import profile_version

    versions = [profile_version(_profile()) for _ in range(3)]
    assert versions == sorted(versions) and len(set(versions)) == 3
