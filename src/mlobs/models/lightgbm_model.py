"""LightGBM boosters over a model's schema, saved as LightGBM's text model. With the option
``log_target`` a regressor learns log(target) (relative errors, as for prices) and answers exp()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from mlobs.models.base import FloatArray, TabularModel
from mlobs.models.schema import ModelSchema
from mlobs.models.tree_runtime import LightGBMOneRow


class LightGBMModel(TabularModel):
    """LightGBM with native categorical splits on ordinal-coded categories."""

    algorithm: ClassVar[str] = "lightgbm"
    artifact_suffix: ClassVar[str] = "txt"
    libraries: ClassVar[tuple[str, ...]] = ("lightgbm",)
    default_params: ClassVar[Mapping[str, Any]] = {
        "objective": "regression",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.9,
        "num_boost_round": 500,
    }

    def __init__(self, spec: ModelSchema, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(spec, params)
        self._booster: lgb.Booster | None = None
        self._one_row: LightGBMOneRow | None = None

    def _set_booster(self, booster: lgb.Booster) -> None:
        self.check_outputs(int(booster.num_model_per_iteration()), "score columns")
        self._booster = booster
        self._one_row = LightGBMOneRow.build(booster)

    def _fit_estimator(self, x: FloatArray, y: np.ndarray, seed: int) -> None:
        params = self.library_params(exclude=("num_boost_round",))
        params.update(seed=seed, num_threads=2, verbose=-1, deterministic=True)
        assert self.schema is not None
        data = lgb.Dataset(
            x,
            label=np.log(y) if self.log_target else y,
            feature_name=self.spec.feature_names,
            categorical_feature=self.schema.categorical_indices(),
            free_raw_data=True,
        )
        self._set_booster(lgb.train(params, data, num_boost_round=self.params["num_boost_round"]))

    def _raw_predict(self, x: FloatArray) -> FloatArray:
        if self._booster is None:
            raise RuntimeError(f"model {self.name!r} is not trained")
        if self._one_row is not None and x.shape == (1, self._one_row.n_features):
            return self._from_raw(self._one_row.predict(x))
        return self.booster_predict(x)

    def booster_predict(self, x: FloatArray) -> FloatArray:
        """LightGBM's ``Booster.predict`` (the reference the one-row path matches)."""
        if self._booster is None:
            raise RuntimeError(f"model {self.name!r} is not trained")
        return self._from_raw(self._booster.predict(x, num_threads=1))

    @property
    def log_target(self) -> bool:
        return bool(self.params.get("log_target", False))

    def _from_raw(self, raw: Any) -> FloatArray:
        out = np.asarray(raw, dtype=np.float64)
        return np.exp(out) if self.log_target else out

    def artifact_feature_names(self) -> list[str] | None:
        if self._booster is None:
            return None
        names = [str(n) for n in self._booster.feature_name()]
        # Trained on a bare matrix, LightGBM names the columns Column_0, Column_1, ...
        return None if names == [f"Column_{i}" for i in range(len(names))] else names

    def artifact_categories(self) -> dict[str, list[str] | None] | None:
        if self._booster is None or self.artifact_feature_names() is None:
            return None
        infos = self._booster.dump_model(num_iteration=0)["feature_infos"]
        categorical = [n for n, info in infos.items() if info.get("values")]
        stored = getattr(self._booster, "pandas_categorical", None) or []
        if len(stored) != len(categorical):
            stored = [None] * len(categorical)
        return {
            n: None if cats is None else [str(c) for c in cats]
            for n, cats in zip(categorical, stored, strict=True)
        }

    def estimator_bytes(self) -> bytes:
        if self._booster is None:
            raise RuntimeError(f"model {self.name!r} is not trained")
        return str(self._booster.model_to_string()).encode()

    def load_estimator(self, data: bytes) -> None:
        self._set_booster(lgb.Booster(model_str=data.decode()))
