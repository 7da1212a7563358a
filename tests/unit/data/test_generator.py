from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlobs.data import DATASETS, DriftSpec, generate, inject_drift
from mlobs.data.generator import UNSEEN_PREFIX


@pytest.mark.parametrize("name", list(DATASETS))
def test_same_seed_same_frame_other_seed_other_frame(name: str) -> None:
    a, b, c = generate(name, 500, seed=3), generate(name, 500, seed=3), generate(name, 500, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize("name", list(DATASETS))
def test_columns_domains_and_a_few_missing_values(name: str) -> None:
    spec = DATASETS[name]
    df = generate(name, 5_000, seed=1)
    assert list(df.columns) == [*spec.feature_names, spec.target]
    assert df[spec.target].notna().all()
    for f in spec.features:
        bad = [v for v in df[f.name].tolist() if f.check(None if pd.isna(v) else v)]
        assert not bad, f"{f.name}: values outside the domain: {bad[:5]}"
        if f.kind == "categorical":
            assert set(df[f.name].dropna()) <= set(f.categories)
    missing = df[spec.feature_names].isna().mean()
    assert 0 < missing.max() < 0.06  # a few, not many
    assert (missing > 0).sum() >= 2


def test_label_rates() -> None:
    assert 0.01 < generate("fraud", 20_000, seed=0)["is_fraud"].mean() < 0.06
    assert 0.15 < generate("churn", 20_000, seed=0)["churned"].mean() < 0.4
    assert (generate("price", 2_000, seed=0)["price"] > 0).all()


def test_mean_shift_moves_the_mean_by_the_asked_standard_deviations() -> None:
    base = generate("churn", 20_000, seed=5)
    sd = base["monthly_charges"].std()
    shifted = inject_drift(
        base, DATASETS["churn"], DriftSpec(mean_shift={"monthly_charges": 0.5}), seed=1
    )
    moved = (shifted["monthly_charges"].mean() - base["monthly_charges"].mean()) / sd
    assert moved == pytest.approx(0.5, abs=0.02)
    # Other columns are untouched.
    pd.testing.assert_series_equal(shifted["tenure_months"], base["tenure_months"])


def test_scale_unseen_reweighting_and_missing() -> None:
    spec = DATASETS["fraud"]
    base = generate("fraud", 20_000, seed=2)
    drift = DriftSpec(
        scale={"customer_age": 2.0},
        unseen={"merchant_category": 0.2},
        category_weights={"channel": {"atm": 10.0}},
        missing={"amount": 0.3},
    )
    out = inject_drift(base, spec, drift, seed=3)
    assert out["customer_age"].std() > 1.6 * base["customer_age"].std()
    unseen = out["merchant_category"].dropna().str.startswith(UNSEEN_PREFIX).mean()
    assert unseen == pytest.approx(0.2, abs=0.02)
    assert (out["channel"] == "atm").mean() > 3 * (base["channel"] == "atm").mean()
    assert out["amount"].isna().mean() == pytest.approx(0.3, abs=0.02)
    assert out["customer_age"].between(18, 110).all()  # clipped to the physical domain


def test_concept_drift_changes_the_label_relation_not_the_features() -> None:
    base = generate("churn", 20_000, seed=9)
    drifted = generate("churn", 20_000, seed=9, drift=DriftSpec(concept=1.0))
    features = DATASETS["churn"].feature_names
    pd.testing.assert_frame_equal(base[features], drifted[features])
    # Long-tenure customers were loyal; after the shift they are not.
    long = base["tenure_months"] > 48
    assert drifted.loc[long, "churned"].mean() > base.loc[long, "churned"].mean() + 0.1


@pytest.mark.parametrize("name", list(DATASETS))
def test_presets_scale_with_intensity(name: str) -> None:
    assert DriftSpec.preset(name, 0.0).is_empty
    weak, strong = DriftSpec.preset(name, 0.2), DriftSpec.preset(name, 0.8)
    for feature, shift in weak.mean_shift.items():
        assert abs(strong.mean_shift[feature]) > abs(shift) > 0


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="unknown data set"):
        generate("nope", 10)
    with pytest.raises(ValueError, match="n must be >= 1"):
        generate("fraud", 0)
    with pytest.raises(ValueError, match="concept"):
        DriftSpec(concept=1.5)
    with pytest.raises(ValueError, match="categorical"):
        inject_drift(
            generate("fraud", 10), DATASETS["fraud"], DriftSpec(mean_shift={"channel": 1.0}), seed=0
        )


def test_feature_check_reports_the_reason() -> None:
    hour = DATASETS["fraud"].feature("hour")
    assert hour.check(25) == "must be <= 23"
    assert hour.check(3.5) == "must be a whole number"
    assert hour.check(float("nan")) == "must be a finite number"
    assert hour.check("3") == "must be a number or null"
    assert hour.check(True) == "must be a number or null"
    assert hour.check(None) is None and hour.check(23) is None
    assert np.isnan(generate("fraud", 5_000, seed=0)["avg_amount_30d"]).any()
