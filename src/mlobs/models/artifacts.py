"""Saving and loading trained models: the only file I/O of the models layer.

Layout, one folder per model under the model directory::

    <model_dir>/<name>/model.<ubj|txt|skops>   the estimator in its library's non-pickle format
    <model_dir>/<name>/schema.json             features, categories and ranges seen in training
    <model_dir>/<name>/metadata.json           version, training time, rows, holdout metrics, hash

Files are written to a temporary name and renamed, so a reader never sees half an artifact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlobs.models.base import ModelMetadata, TabularModel
from mlobs.models.churn_predictor import ChurnPredictor
from mlobs.models.fraud_detector import FraudDetector
from mlobs.models.preprocessing import FeatureSchema
from mlobs.models.price_predictor import PricePredictor

MODEL_CLASSES: Mapping[str, Callable[[], TabularModel]] = MappingProxyType(
    {"fraud": FraudDetector, "price": PricePredictor, "churn": ChurnPredictor}
)
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_CLASSES)


def model_path(model_dir: Path, name: str) -> Path:
    return Path(model_dir) / name


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def save_model(model: TabularModel, model_dir: Path) -> Path:
    """Save a trained model under ``model_dir/<name>/`` and return that folder."""
    if model.schema is None or model.metadata is None:
        raise ValueError(f"model {model.name!r} is not trained")
    folder = model_path(model_dir, model.name)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"model.{model.artifact_suffix}", model.estimator_bytes())
    write_json(folder / "schema.json", model.schema.to_dict())
    # Metadata last: its presence marks a complete artifact.
    write_json(folder / "metadata.json", model.metadata.to_dict())
    return folder


def is_saved(model_dir: Path, name: str) -> bool:
    return (model_path(model_dir, name) / "metadata.json").is_file()


def load_model(model_dir: Path, name: str) -> TabularModel:
    """Load a saved model.

    Raises:
        KeyError: unknown model name.
        FileNotFoundError: the model has not been trained into ``model_dir``.
        ValueError: the artifact is inconsistent (another model's files, untrusted types, ...).
    """
    if name not in MODEL_CLASSES:
        raise KeyError(f"unknown model {name!r}; known: {list(MODEL_NAMES)}")
    folder = model_path(model_dir, name)
    meta = ModelMetadata.from_dict(json.loads((folder / "metadata.json").read_text()))
    model = MODEL_CLASSES[name]()
    if meta.model_name != name or meta.algorithm != model.algorithm:
        raise ValueError(f"{folder} holds {meta.model_name}/{meta.algorithm}, not {name}")
    model.schema = FeatureSchema.from_dict(json.loads((folder / "schema.json").read_text()))
    model.load_estimator((folder / f"model.{model.artifact_suffix}").read_bytes())
    model.metadata = meta
    return model
