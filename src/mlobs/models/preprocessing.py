"""Feature schema fitted on training data, and the one encoding every model uses.

Encoding (the same for a frame and for one record, so batch and single-row predictions agree):

- numeric and boolean: the value as float (true is 1); missing is NaN, or the training median
  when the model cannot take NaN;
- categorical: the index of the category among those seen in training; a category never seen in
  training gets the extra "other/unseen" code ``len(categories)``; missing is NaN, or the further
  code ``len(categories) + 1`` when the model cannot take NaN.

The single-record path works on plain Python values and one small numpy array: building a one-row
pandas frame alone costs about 0.4 ms, more than a tree model's whole prediction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlobs.models.schema import FeatureSpec, ModelSchema

FloatArray = np.ndarray


@dataclass(frozen=True)
class FeatureSchema:
    """A data set's features plus what training saw of them.

    Attributes:
        spec: names, kinds and physical domains.
        categories: categorical feature -> categories seen in training, most frequent first.
        ranges: numeric feature -> (min, max) seen in training.
        medians: numeric feature -> training median (the fill value when ``impute``).
        impute: fill missing values instead of passing NaN (for models that cannot split on NaN).
    """

    spec: ModelSchema
    categories: Mapping[str, tuple[str, ...]]
    ranges: Mapping[str, tuple[float, float]]
    medians: Mapping[str, float]
    impute: bool = False

    @classmethod
    def fit(cls, spec: ModelSchema, df: pd.DataFrame, *, impute: bool = False) -> FeatureSchema:
        categories: dict[str, tuple[str, ...]] = {}
        ranges: dict[str, tuple[float, float]] = {}
        medians: dict[str, float] = {}
        for f in spec.features:
            col = df[f.name]
            if f.kind == "categorical":
                categories[f.name] = tuple(str(c) for c in col.dropna().value_counts().index)
            else:
                x = col.to_numpy(dtype=float)
                x = x[np.isfinite(x)]
                if x.size == 0:
                    raise ValueError(f"feature {f.name!r} has no finite values to train on")
                ranges[f.name] = (float(x.min()), float(x.max()))
                medians[f.name] = float(np.median(x))
        return cls(spec, categories, ranges, medians, impute)

    @classmethod
    def declared(cls, spec: ModelSchema) -> FeatureSchema:
        """The encoding a manifest declares: category codes in the manifest's order, missing
        values passed on as NaN (for an artifact trained outside mlobs)."""
        categories = {f.name: tuple(f.categories) for f in spec.features if f.kind == "categorical"}
        return cls(spec, categories, {}, {}, impute=False)

    @property
    def feature_names(self) -> list[str]:
        return self.spec.feature_names

    def categorical_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.spec.features) if f.kind == "categorical"]

    # ------------------------------------------------------------------ encoding

    def transform(self, df: pd.DataFrame) -> FloatArray:
        """Encode a frame (one row per record) into a float matrix in feature order."""
        out = np.empty((len(df), len(self.spec.features)), dtype=np.float64)
        for j, f in enumerate(self.spec.features):
            col = df[f.name]
            if f.kind != "categorical":
                x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                if self.impute:
                    x = np.where(np.isnan(x), self.medians[f.name], x)
            else:
                cats = self.categories[f.name]
                codes = (
                    pd.Index(cats, dtype=object)
                    .get_indexer(pd.Index(col.astype(object)))
                    .astype(np.float64)
                )
                missing = col.isna().to_numpy()
                codes[(codes < 0) & ~missing] = len(cats)  # unseen
                codes[missing] = (len(cats) + 1) if self.impute else np.nan
                x = codes
            out[:, j] = x
        return out

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Encode validated records (dicts with every feature key) into a float matrix."""
        out = np.empty((len(records), len(self.spec.features)), dtype=np.float64)
        for i, r in enumerate(records):
            self._fill_row(r, out[i])
        return out

    def transform_one(self, record: Mapping[str, Any]) -> FloatArray:
        """Encode one validated record into a (1, n_features) matrix."""
        out = np.empty((1, len(self.spec.features)), dtype=np.float64)
        self._fill_row(record, out[0])
        return out

    def _fill_row(self, record: Mapping[str, Any], row: FloatArray) -> None:
        for j, (name, codes, fill) in enumerate(self._plan):
            v = record[name]
            if codes is None:  # numeric
                row[j] = fill if v is None else float(v)
            elif v is None:
                row[j] = fill
            else:
                row[j] = codes.get(v, len(codes))

    @property
    def _plan(self) -> list[tuple[str, dict[str, int] | None, float]]:
        # Cached on first use: per feature its name, category codes (None if numeric) and fill.
        plan: list[tuple[str, dict[str, int] | None, float]] | None = self.__dict__.get("_plan_")
        if plan is None:
            plan = []
            for f in self.spec.features:
                if f.kind != "categorical":
                    fill = self.medians[f.name] if self.impute else math.nan
                    plan.append((f.name, None, fill))
                else:
                    cats = self.categories[f.name]
                    fill = float(len(cats) + 1) if self.impute else math.nan
                    plan.append((f.name, {c: i for i, c in enumerate(cats)}, fill))
            object.__setattr__(self, "_plan_", plan)
        return plan

    # ------------------------------------------------------------------ checks

    def is_unseen(self, feature: str, value: Any) -> bool:
        """True when a categorical value was not seen in training (None is missing, not unseen)."""
        return value is not None and value not in self.categories[feature]

    def feature_spec(self, name: str) -> FeatureSpec:
        return self.spec.feature(name)

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "medians": dict(self.medians),
            "impute": self.impute,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSchema:
        return cls(
            spec=ModelSchema.from_dict(d["spec"]),
            categories={k: tuple(v) for k, v in d["categories"].items()},
            ranges={k: (float(v[0]), float(v[1])) for k, v in d["ranges"].items()},
            medians={k: float(v) for k, v in d["medians"].items()},
            impute=bool(d["impute"]),
        )
