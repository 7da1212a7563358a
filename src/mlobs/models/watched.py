"""A model served elsewhere: its manifest and metadata without an estimator. Monitoring reads
what it needs from it (task, classes, holdout figures, the probability calibration the
label-free estimate uses); asking it to predict is ``NotServed``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mlobs.errors import NotServed
from mlobs.models.base import BatchPrediction, FloatArray, ModelMetadata, Prediction, TabularModel
from mlobs.models.manifest import Manifest
from mlobs.models.preprocessing import FeatureSchema


class WatchedModel(TabularModel):
    algorithm: ClassVar[str] = "none"
    artifact_suffix: ClassVar[str] = ""

    @classmethod
    def of(cls, manifest: Manifest, meta: ModelMetadata | None) -> WatchedModel:
        model = cls(manifest.model_schema())
        model.schema = FeatureSchema.declared(model.spec)
        model.positive_class = manifest.positive_class
        version = manifest.version or (meta.version if meta else "") or "unversioned"
        if meta is None:
            meta = ModelMetadata.registered(manifest.name, "none", version, manifest.threshold)
        model.metadata = meta.with_version(version, manifest.threshold)
        return model

    def predict_record(self, record: Mapping[str, Any]) -> Prediction:
        raise NotServed(self.name)

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> BatchPrediction:
        raise NotServed(self.name)

    def predict_frame(self, df: pd.DataFrame) -> BatchPrediction:
        raise NotServed(self.name)

    def _fit_estimator(self, x: FloatArray, y: np.ndarray, seed: int) -> None:
        raise NotImplementedError("a model served elsewhere is not trained here")

    def _raw_predict(self, x: FloatArray) -> FloatArray:
        raise NotServed(self.name)

    def estimator_bytes(self) -> bytes:
        raise NotImplementedError("a model served elsewhere has no estimator here")

    def load_estimator(self, data: bytes) -> None:
        raise NotImplementedError("a model served elsewhere has no estimator here")
