from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mlobs.data import DATASETS, generate
from mlobs.models.preprocessing import FeatureSchema

SPEC = DATASETS["churn"]
TRAIN = generate("churn", 2_000, seed=0)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def test_fit_learns_categories_ranges_and_medians() -> None:
    schema = FeatureSchema.fit(SPEC, TRAIN)
    assert set(schema.categories["contract_type"]) == {"month_to_month", "one_year", "two_year"}
    # Most frequent first.
    assert schema.categories["contract_type"][0] == "month_to_month"
    lo, hi = schema.ranges["tenure_months"]
    assert lo == TRAIN["tenure_months"].min() and hi == TRAIN["tenure_months"].max()
    assert schema.medians["monthly_charges"] == TRAIN["monthly_charges"].median()


def test_unseen_and_missing_codes() -> None:
    for impute in (False, True):
        schema = FeatureSchema.fit(SPEC, TRAIN, impute=impute)
        rec = _records(TRAIN.head(1))[0] | {
            "contract_type": "lifetime",
            "payment_method": None,
            "satisfaction_score": None,
        }
        row = schema.transform_one(rec)[0]
        j = SPEC.feature_names.index
        assert row[j("contract_type")] == 3  # the "other/unseen" code after three categories
        k = len(schema.categories["payment_method"])
        if impute:
            assert row[j("payment_method")] == k + 1
            assert row[j("satisfaction_score")] == schema.medians["satisfaction_score"]
        else:
            assert math.isnan(row[j("payment_method")])
            assert math.isnan(row[j("satisfaction_score")])
        assert schema.is_unseen("contract_type", "lifetime")
        assert not schema.is_unseen("contract_type", None)


def test_frame_records_and_single_paths_agree_on_real_rows() -> None:
    for impute in (False, True):
        schema = FeatureSchema.fit(SPEC, TRAIN, impute=impute)
        frame = schema.transform(TRAIN)
        recs = schema.transform_records(_records(TRAIN))
        np.testing.assert_array_equal(frame, recs)
        np.testing.assert_array_equal(frame[:1], schema.transform_one(_records(TRAIN.head(1))[0]))


_cat = st.one_of(st.none(), st.sampled_from(["month_to_month", "one_year", "two_year", "zzz"]))
_num = st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                **{f.name: _num for f in SPEC.features if f.kind == "numeric"},
                **{f.name: _cat for f in SPEC.features if f.kind == "categorical"},
            }
        ),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_paths_agree_on_any_valid_records(records: list[dict[str, Any]], impute: bool) -> None:
    schema = FeatureSchema.fit(SPEC, TRAIN, impute=impute)
    frame = pd.DataFrame(records, columns=SPEC.feature_names)
    np.testing.assert_array_equal(schema.transform(frame), schema.transform_records(records))
    if impute:
        assert not np.isnan(schema.transform_records(records)).any()


def test_round_trip_through_dict() -> None:
    schema = FeatureSchema.fit(SPEC, TRAIN, impute=True)
    again = FeatureSchema.from_dict(schema.to_dict())
    assert again == schema
    np.testing.assert_array_equal(again.transform(TRAIN), schema.transform(TRAIN))
