"""Saving and loading model versions: the only file I/O of the models layer.

Layout, one folder per model under the model directory::

    <model_dir>/<name>/manifest.yaml     name, task, features, target, artifact (the one schema)
    <model_dir>/<name>/model.<suffix>    the artifact: XGBoost UBJ/JSON, LightGBM text, skops, ONNX
    <model_dir>/<name>/metadata.json     version, when and from what it was built, holdout figures,
                                         the calibration of a classifier's probabilities
    <model_dir>/<name>/schema.json       (estimators mlobs trains) the encoding training saw:
                                         category codes, ranges, the fill values of missing ones
    <model_dir>/<name>/reference.json    the frozen reference profile (monitoring's)

A folder written before manifests existed (``schema.json`` and ``metadata.json`` only) is read as
if its manifest said the same. Files are written to a temporary name and renamed, so a reader never
sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlobs.models.base import ModelMetadata, TabularModel
from mlobs.models.forest_model import RandomForestModel
from mlobs.models.lightgbm_model import LightGBMModel
from mlobs.models.manifest import (
    ArtifactEntry,
    ArtifactFormat,
    Manifest,
    ManifestError,
    manifest_path,
    sha256_file,
)
from mlobs.models.onnx_model import OnnxModel
from mlobs.models.preprocessing import FeatureSchema
from mlobs.models.schema import ModelSchema
from mlobs.models.skops_model import SklearnModel
from mlobs.models.xgboost_model import XGBoostModel

# The estimators mlobs trains on its own encoding, by algorithm.
ALGORITHMS: Mapping[str, type[TabularModel]] = MappingProxyType(
    {"xgboost": XGBoostModel, "lightgbm": LightGBMModel, "random_forest": RandomForestModel}
)
_FORMAT_OF: dict[str, ArtifactFormat] = {
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "random_forest": "skops",
}
METADATA_FILE = "metadata.json"
ENCODING_FILE = "schema.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a uniquely named temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def model_names(model_dir: Path) -> list[str]:
    """The names of the model folders under ``model_dir`` (a manifest or legacy metadata in it)."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".")
        and (manifest_path(p) is not None or (p / METADATA_FILE).is_file())
    )  # fmt: skip


def catalog_signature(model_dir: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What changes when a model is registered, replaced or removed: each model folder's manifest
    (or legacy metadata) with its inode, size and modification time. One listing and a stat per
    model: cheap enough to poll every few seconds."""
    out = []
    for name in model_names(model_dir):
        folder = Path(model_dir) / name
        path = manifest_path(folder) or folder / METADATA_FILE
        try:
            st = path.stat()
        except OSError:  # removed or being replaced this instant: the next poll sees it
            continue
        out.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def swap_in_progress(model_dir: Path, within: float = 60.0) -> bool:
    """A new version is being put in place (its old folder moved aside in the last ``within``
    seconds, the new one not yet renamed in): a reader should look again rather than conclude the
    model is gone."""
    import time

    root = Path(model_dir)
    if not root.is_dir():
        return False
    now = time.time()
    for p in root.iterdir():
        if p.name.startswith(".old-"):
            try:
                if now - p.stat().st_mtime < within:
                    return True
            except OSError:
                continue
    return False


def is_saved(model_dir: Path, name: str) -> bool:
    folder = Path(model_dir) / name
    return manifest_path(folder) is not None or (folder / METADATA_FILE).is_file()


def read_manifest(folder: Path) -> Manifest:
    """The folder's manifest, or the one its legacy ``schema.json`` and ``metadata.json`` imply.

    Raises:
        FileNotFoundError: neither is there.
        ManifestError: the manifest does not validate.
    """
    folder = Path(folder)
    path = manifest_path(folder)
    if path is not None:
        manifest = Manifest.read(path)
        if manifest.name != folder.name:
            raise ManifestError(
                f"{path}: name {manifest.name!r} differs from its folder {folder.name!r}"
            )
        return manifest
    meta = ModelMetadata.from_dict(json.loads((folder / METADATA_FILE).read_text()))
    if meta.model_name != folder.name:
        raise ManifestError(f"{folder} holds {meta.model_name}/{meta.algorithm}, not {folder.name}")
    encoding = json.loads((folder / ENCODING_FILE).read_text())
    spec = ModelSchema.from_dict(encoding["spec"])
    if meta.algorithm not in ALGORITHMS:
        raise ManifestError(f"{folder}: unknown algorithm {meta.algorithm!r} and no manifest")
    suffix = ALGORITHMS[meta.algorithm].artifact_suffix
    binary = spec.task == "binary_classification"
    return Manifest.of(
        spec,
        version=meta.version,
        decision_threshold=meta.decision_threshold if binary else None,
        artifact=ArtifactEntry(
            format=_FORMAT_OF[meta.algorithm],
            file=f"model.{suffix}",
            algorithm=meta.algorithm,
        ),
    )


def save_model(model: TabularModel, model_dir: Path) -> Path:
    """Save a model mlobs trained under ``model_dir/<name>/`` and return that folder."""
    if model.schema is None or model.metadata is None:
        raise ValueError(f"model {model.name!r} is not trained")
    folder = Path(model_dir) / model.name
    folder.mkdir(parents=True, exist_ok=True)
    artifact = folder / f"model.{model.artifact_suffix}"
    write_atomic(artifact, model.estimator_bytes())
    write_json(folder / ENCODING_FILE, model.schema.to_dict())
    write_json(folder / METADATA_FILE, model.metadata.to_dict())
    binary = model.spec.task == "binary_classification"
    manifest = Manifest.of(
        model.spec,
        version=model.metadata.version,
        decision_threshold=model.metadata.decision_threshold if binary else None,
        artifact=ArtifactEntry(
            format=_FORMAT_OF[model.algorithm],
            file=artifact.name,
            sha256=sha256_file(artifact),
            algorithm=model.algorithm,
        ),
        performance_rule=dict(model.performance_rule) if model.performance_rule else None,
    )
    # The manifest last: its presence marks a complete version.
    write_atomic(folder / "manifest.yaml", manifest.to_yaml().encode())
    return folder


def build_model(manifest: Manifest, meta: ModelMetadata | None) -> TabularModel:
    """An empty model of the manifest's format and algorithm, not yet holding its estimator."""
    if manifest.artifact is None:
        raise ValueError(f"model {manifest.name!r} has no artifact: it is monitor-only")
    spec = manifest.model_schema()
    params = dict(meta.params) if meta is not None else {}
    fmt, algorithm = manifest.artifact.format, manifest.artifact.algorithm
    model: TabularModel
    if algorithm is not None and algorithm in ALGORITHMS:
        model = ALGORITHMS[algorithm](spec, params)
    elif fmt == "xgboost":
        model = XGBoostModel(spec, params)
    elif fmt == "lightgbm":
        model = LightGBMModel(spec, params)
    elif fmt == "skops":
        model = SklearnModel(spec, params)
    else:
        model = OnnxModel(spec, params)
    model.positive_class = manifest.positive_class
    return model


def read_metadata(folder: Path) -> ModelMetadata | None:
    """A model version's metadata (holdout figures, calibration); None when it has none."""
    path = Path(folder) / METADATA_FILE
    return ModelMetadata.from_dict(json.loads(path.read_text())) if path.is_file() else None


def load_model(model_dir: Path, name: str) -> TabularModel:
    """Load a saved model version.

    Raises:
        FileNotFoundError: no model of that name in ``model_dir``.
        ManifestError: its manifest does not validate.
        ValueError: the artifact is inconsistent (another checksum, untrusted types, no artifact).
    """
    folder = Path(model_dir) / name
    if not folder.is_dir():
        raise FileNotFoundError(f"no model folder {folder}")
    manifest = read_manifest(folder)
    meta = read_metadata(folder)
    if manifest.artifact is None:
        raise ValueError(f"model {name!r} has no artifact: it is monitor-only")
    artifact = folder / manifest.artifact.file
    encoding = folder / ENCODING_FILE
    saved = json.loads(encoding.read_text()) if encoding.is_file() else None
    return model_from_bytes(manifest, meta, artifact.read_bytes(), saved)


def model_from_bytes(
    manifest: Manifest,
    meta: ModelMetadata | None,
    data: bytes,
    encoding: Mapping[str, Any] | None = None,
) -> TabularModel:
    """A served model from its manifest, metadata, artifact bytes and (for estimators mlobs
    trained) the saved encoding; ValueError when the bytes are not the manifest's artifact."""
    model = build_model(manifest, meta)
    assert manifest.artifact is not None
    if manifest.artifact.sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != manifest.artifact.sha256:
            raise ValueError(
                f"{manifest.artifact.file}: sha256 {digest} differs from the manifest's"
            )
    if encoding is not None:
        saved = FeatureSchema.from_dict(encoding)
        model.schema = FeatureSchema(
            model.spec, saved.categories, saved.ranges, saved.medians, saved.impute
        )
    else:
        model.schema = FeatureSchema.declared(model.spec)
    model.load_estimator(data)
    version = manifest.version or (meta.version if meta else None)
    version = version or manifest.content_version(manifest.artifact.sha256)
    threshold = manifest.threshold
    if meta is None:
        meta = ModelMetadata.registered(manifest.name, model.algorithm, version, threshold)
    else:
        meta = meta.with_version(version, threshold)
    model.metadata = meta
    return model
