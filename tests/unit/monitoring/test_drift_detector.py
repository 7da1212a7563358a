"""DriftDetector: its documented signature, verdict rules, edge cases, and detection on seeded streams."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mlobs.data import DATASETS, DriftSpec, generate
from mlobs.monitoring import DriftDetector, ReferenceProfile
from mlobs.stats import js_distance, psi


def test_seed_signature_and_defaults() -> None:
    det = DriftDetector()
    assert (det.psi_threshold_warning, det.psi_threshold_critical, det.drift_share_threshold) == (
        0.1,
        0.2,
        0.3,
    )
    det = DriftDetector(psi_threshold_warning=0.05, psi_threshold_critical=0.3,
                        drift_share_threshold=0.5)  # fmt: skip
    assert det.thresholds["drift_share_threshold"] == 0.5
    with pytest.raises(ValueError, match="psi_threshold_warning"):
        DriftDetector(psi_threshold_warning=0.3, psi_threshold_critical=0.2)
    with pytest.raises(ValueError, match="drift_share_threshold"):
        DriftDetector(drift_share_threshold=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        DriftDetector().check(pd.DataFrame({"x": [1.0]}))


def test_known_answer_on_two_categories_and_a_numeric_split() -> None:
    # Reference: x is 0 or 1 half and half. Its deciles are 0 (10-40%), 0.5 (50%) and 1 (60-90%),
    # so the cut points are [0, 0.5, 1]: bins (-inf,0], (0,0.5], (0.5,1], (1,inf) holding
    # [0.5, 0, 0.5, 0]. The empty bins add nothing to PSI. c is "a"/"b" half and half.
    ref = pd.DataFrame({"x": [0.0, 1.0] * 50, "c": ["a", "b"] * 50})
    det = DriftDetector().fit(ref)
    # Current: x is 0 a quarter of the time, c is all "a".
    cur = pd.DataFrame({"x": [0.0] * 25 + [1.0] * 75, "c": ["a"] * 100})
    r = det.check(cur)
    # PSI by hand: (0.25-0.5)ln(0.25/0.5) + (0.75-0.5)ln(0.75/0.5) = 0.1733 + 0.1014 = 0.2747
    assert r.features["x"].score == pytest.approx(0.2747, abs=1e-4)
    assert r.features["x"].status == "critical"
    # JS distance of [0.5, 0.5, 0] vs [1, 0, 0] (unseen bucket last), base 2:
    # m = [0.75, 0.25, 0]; KL(p||m) = 0.5 log2(0.5/0.75) + 0.5 log2(0.5/0.25) = 0.2075
    # KL(q||m) = log2(1/0.75) = 0.4150; JSD = (0.2075 + 0.4150)/2 = 0.3113; distance = 0.5579
    assert r.features["c"].score == pytest.approx(0.5579, abs=1e-4)
    assert r.features["c"].method == "jensenshannon" and r.features["x"].method == "psi"
    assert r.drift_share == 1.0 and r.drifted_features_count == 2 and r.dataset_drift
    assert r.features["x"].reference == [0.5, 0.0, 0.5, 0.0]
    assert r.features["x"].current == [0.25, 0.0, 0.75, 0.0]


def test_verdict_rules_share_threshold_and_prediction_apart() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({f"x{i}": rng.normal(size=4000) for i in range(10)})
    det = DriftDetector().fit(ref, predictions=rng.normal(size=4000))
    cur = pd.DataFrame({f"x{i}": rng.normal(size=2000) for i in range(10)})
    for i in range(3):  # 3 of 10 drifted: share 0.3 >= 0.3
        cur[f"x{i}"] += 1.0
    r = det.check(cur, predictions=rng.normal(2.0, 1.0, 2000))
    assert r.drifted_features_count == 3 and r.drift_share == pytest.approx(0.3)
    assert r.dataset_drift
    assert r.prediction is not None and r.prediction.status == "critical"
    assert "__prediction__" not in r.features  # reported apart, not counted
    cur["x2"] -= 1.0
    r2 = det.check(cur)
    assert r2.drift_share == pytest.approx(0.2) and not r2.dataset_drift
    assert r2.prediction is None


def test_all_missing_constant_nan_and_inf_columns_never_crash() -> None:
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"x": rng.normal(size=1000), "k": 3.0, "c": rng.choice(["u", "v"], 1000)})
    det = DriftDetector(min_samples=10).fit(ref)
    cur = pd.DataFrame({
        "x": [np.nan] * 50,
        "k": [3.0] * 25 + [np.inf] * 25,
        "c": [None] * 50,
    })  # fmt: skip
    r = det.check(cur)
    assert r.features["x"].score is None and r.features["x"].status == "insufficient_data"
    assert r.features["x"].reason == "no non-missing values"
    assert r.features["c"].status == "insufficient_data"
    assert r.features["x"].missing_share == 1.0
    # A constant reference column has one bin; inf lands in it, and nothing is drifted there.
    assert r.features["k"].score == 0.0
    assert r.drift_share == 0.0 and not r.dataset_drift
    assert r.status == "ok"
    nothing = det.check(pd.DataFrame({"x": [np.nan], "k": [np.nan], "c": [None]}))
    assert nothing.status == "insufficient_data" and not nothing.dataset_drift


def test_unseen_categories_fall_in_their_own_bucket() -> None:
    ref = pd.DataFrame({"c": ["a", "b"] * 500})
    det = DriftDetector().fit(ref)
    r = det.check(pd.DataFrame({"c": ["a", "b", "zzz", "yyy"] * 100}))
    f = r.features["c"]
    assert f.bins == ["a", "b", "(unseen)"]
    assert f.current == pytest.approx([0.25, 0.25, 0.5])
    assert f.score == pytest.approx(js_distance(np.array([0.5, 0.5, 0.0]), np.array(f.current)))


def test_report_to_dict_is_plain_json_keyed_by_feature() -> None:
    df = generate("fraud", 3000, seed=1)
    spec = DATASETS["fraud"]
    det = DriftDetector().fit(df, spec.categorical, features=spec.feature_names)
    d = det.check(generate("fraud", 1000, seed=2)).to_dict()
    again = json.loads(json.dumps(d))
    assert set(again["features"]) == set(spec.feature_names)
    assert again["features"]["amount"]["method"] == "psi"
    assert again["features"]["channel"]["method"] == "jensenshannon"
    assert {"drift_share", "drifted_features_count", "dataset_drift", "status"} <= set(again)


def test_from_profile_gives_the_same_report_as_fit() -> None:
    spec = DATASETS["price"]
    ref = generate("price", 5000, seed=3)
    fitted = DriftDetector().fit(ref, spec.categorical, features=spec.feature_names)
    assert fitted.profile is not None
    restored = ReferenceProfile.from_dict(json.loads(json.dumps(fitted.profile.to_dict())))
    cur = generate("price", 1000, seed=4, drift=DriftSpec.preset("price", 0.4))
    a = fitted.check(cur).to_dict()
    b = DriftDetector.from_profile(restored).check(cur).to_dict()
    for d in (a, b):
        d.pop("created_at")
    assert a == b


def test_profile_size_does_not_grow_with_rows() -> None:
    spec = DATASETS["churn"]
    sizes = []
    for n in (2_000, 50_000):
        p = ReferenceProfile.build(generate("churn", n, seed=5), features=spec.feature_names,
                                   categorical_features=spec.categorical)  # fmt: skip
        sizes.append(len(json.dumps(p.to_dict())))
    assert abs(sizes[1] - sizes[0]) / sizes[0] < 0.1


def _windows(name: str, feature: str | None, n: int, seed0: int) -> list[pd.DataFrame]:
    drift = DriftSpec(mean_shift={feature: 0.5}) if feature else None
    return [generate(name, 1_000, seed=seed0 + i, drift=drift) for i in range(n)]


@pytest.mark.parametrize(("name", "feature"), [("churn", "monthly_charges"),
                                               ("fraud", "customer_age")])  # fmt: skip
def test_detection_quality_on_seeded_windows(name: str, feature: str) -> None:
    """The rule: of 100 undrifted 1,000-row windows against a 20,000-row reference at
    most 2 show dataset drift; with a 0.5-sd mean shift in one normal feature, that feature is
    at warning or above in at least 95 of 100."""
    spec = DATASETS[name]
    det = DriftDetector().fit(generate(name, 20_000, seed=1), spec.categorical,
                              features=spec.feature_names)  # fmt: skip
    false_alarms = sum(det.check(w).dataset_drift for w in _windows(name, None, 100, 1_000))
    assert false_alarms <= 2
    hits = sum(det.check(w).features[feature].drifted for w in _windows(name, feature, 100, 2_000))
    assert hits >= 95


def test_psi_of_a_window_equals_psi_of_its_proportions() -> None:
    rng = np.random.default_rng(8)
    det = DriftDetector().fit(pd.DataFrame({"x": rng.normal(size=10_000)}))
    r = det.check(pd.DataFrame({"x": rng.normal(0.3, 1.0, 3_000)}))
    f = r.features["x"]
    assert f.score == pytest.approx(psi(np.array(f.reference), np.array(f.current)))
    assert math.isclose(sum(f.current), 1.0)


def test_optional_methods_known_answers() -> None:
    ref = pd.DataFrame({"x": [0.0, 1.0] * 50, "c": ["a", "b"] * 50})
    cur = pd.DataFrame({"x": [0.0] * 25 + [1.0] * 75, "c": ["a"] * 100})
    r = DriftDetector(numeric_method="ks", categorical_method="chi2").fit(ref).check(cur)
    # Binned CDFs over [0.5, 0, 0.5, 0] and [0.25, 0, 0.75, 0]: [0.5, 0.5, 1, 1] vs
    # [0.25, 0.25, 1, 1]; the largest gap is 0.25 (>= 0.2: critical).
    assert r.features["x"].method == "ks" and r.features["x"].score == pytest.approx(0.25)
    assert r.features["x"].status == "critical"
    # chi2 of 100 "a" against 50/50: statistic = 2 * 50^2 / 50 = 100 (the empty unseen bucket
    # floored at 1e-4 adds ~0.01), p ~ 1e-22: critical, and the score is the p-value.
    assert r.features["c"].method == "chi2" and r.features["c"].score < 1e-15
    assert r.features["c"].status == "critical"
    same = DriftDetector(categorical_method="chi2").fit(ref).check(ref)
    # Identical proportions: statistic ~0 (only the floored empty bucket), p-value near 1.
    assert same.features["c"].score > 0.99 and same.features["c"].status == "ok"
    assert "chi2_threshold_warning" in same.thresholds


def test_wasserstein_in_reference_standard_deviations() -> None:
    rng = np.random.default_rng(3)
    det = DriftDetector(numeric_method="wasserstein").fit(
        pd.DataFrame({"x": rng.normal(size=20_000)})
    )
    calm = det.check(pd.DataFrame({"x": rng.normal(size=5_000)})).features["x"]
    moved = det.check(pd.DataFrame({"x": rng.normal(1.0, 1.0, 5_000)})).features["x"]
    assert calm.status == "ok" and calm.score is not None and calm.score < 0.05
    # A one-sd shift moves the distribution by one reference sd. The binned estimate places the
    # outer bins' mass at their midpoints to the reference extremes, so it is rough: within 0.3.
    assert moved.score == pytest.approx(1.0, abs=0.3) and moved.status == "critical"
    with pytest.raises(ValueError, match="numeric_method"):
        DriftDetector(numeric_method="kl")  # type: ignore[arg-type]
