"""Price prediction: a LightGBM regressor on log price, saved as LightGBM's text model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from mlobs.data.generator import PRICE
from mlobs.models.base import FloatArray, TabularModel
from mlobs.models.tree_runtime import LightGBMOneRow


class PricePredictor(TabularModel):
    """LightGBM with native categorical splits; it learns log(price), so errors are relative."""

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

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(PRICE, params)
        self._booster: lgb.Booster | None = None
        self._one_row: LightGBMOneRow | None = None

    def _set_booster(self, booster: lgb.Booster) -> None:
        self._booster = booster
        self._one_row = LightGBMOneRow.build(booster)

    def _fit_estimator(self, x: FloatArray, y: np.ndarray, seed: int) -> None:
        params = {k: v for k, v in self.params.items() if k != "num_boost_round"}
        params.update(seed=seed, num_threads=2, verbose=-1, deterministic=True)
        assert self.schema is not None
        data = lgb.Dataset(
            x,
            label=np.log(y),
            feature_name=self.spec.feature_names,
            categorical_feature=self.schema.categorical_indices(),
            free_raw_data=True,
        )
        self._set_booster(lgb.train(params, data, num_boost_round=self.params["num_boost_round"]))

    def _raw_predict(self, x: FloatArray) -> FloatArray:
        if self._booster is None:
            raise RuntimeError("price model is not trained")
        if self._one_row is not None and x.shape == (1, self._one_row.n_features):
            return np.asarray(np.exp(self._one_row.predict(x)), dtype=np.float64)
        return self.booster_predict(x)

    def booster_predict(self, x: FloatArray) -> FloatArray:
        """LightGBM's ``Booster.predict`` as price (the reference the one-row path matches)."""
        if self._booster is None:
            raise RuntimeError("price model is not trained")
        return np.exp(np.asarray(self._booster.predict(x, num_threads=1), dtype=np.float64))

    def estimator_bytes(self) -> bytes:
        if self._booster is None:
            raise RuntimeError("price model is not trained")
        return str(self._booster.model_to_string()).encode()

    def load_estimator(self, data: bytes) -> None:
        self._set_booster(lgb.Booster(model_str=data.decode()))
