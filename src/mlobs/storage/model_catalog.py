"""The model catalogue on disk: registering a model version into ``MODEL_DIR`` and removing one.

A registration reads the user's reference rows and artifact, drafts (or takes) the manifest,
predicts every reference row with the artifact, computes holdout figures and the calibration of a
classifier's probabilities from labelled rows, freezes the reference profile and writes the
version into a new folder that replaces the old one by a rename: a failed registration leaves
nothing behind, and a reader sees the old version or the new one, never half of either.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sqlalchemy import Engine, delete, select

from mlobs.models.artifacts import (
    METADATA_FILE,
    model_from_bytes,
    read_manifest,
    write_atomic,
    write_json,
)
from mlobs.models.base import (
    BatchPrediction,
    ModelMetadata,
    TabularModel,
    classification_metrics,
    data_hash,
    label_key,
    multiclass_metrics,
    regression_metrics,
)
from mlobs.models.manifest import (
    MANIFEST_FILE,
    ArtifactEntry,
    FeatureEntry,
    Manifest,
    ManifestError,
    check_name,
    check_not_pickle,
)
from mlobs.models.onnx_model import OnnxModel
from mlobs.models.schema import Task
from mlobs.monitoring.profiles import PROFILE_FILE, ReferenceProfile
from mlobs.stats.estimation import expected_calibration_error, fit_calibrator
from mlobs.storage import tables

REFERENCE_SAMPLE_FILE = "reference.parquet"
# An integer column with this many distinct values or fewer may be a category in disguise.
FEW_DISTINCT = 10
# Below this many labelled rows per half, no calibration is fitted (too few to judge it).
MIN_CALIBRATION_ROWS = 50
_LIBRARIES = {
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "skops": "sklearn",
    "onnx": "onnxruntime",
}


class RegistrationError(ValueError):
    """A registration that cannot go on; the message names the column or file, ``field`` the
    input it is about (``reference``, ``artifact``, ``target``, ``name``, ...)."""

    def __init__(self, message: str, *, field: str = "reference") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Registration:
    """What ``mlobs register`` (or ``POST /models``) asks for."""

    name: str
    reference: pd.DataFrame
    target: str | None = None
    artifact: Path | None = None
    task: Task | None = None
    categorical: Sequence[str] = ()
    holdout: pd.DataFrame | None = None
    manifest: Manifest | None = None
    positive_class: Any = None
    decision_threshold: float | None = None
    sample_rows: int = 10_000
    seed: int = 0
    # A model served elsewhere (no artifact): the reference's columns that hold its own output.
    prediction_col: str | None = None
    probability_col: str | None = None
    score_cols: Sequence[str] = ()

    @property
    def output_cols(self) -> list[str]:
        cols = [self.prediction_col, self.probability_col, *self.score_cols]
        return [c for c in cols if c is not None]


@dataclass
class Registered:
    """The version written, and what the summary shows."""

    manifest: Manifest
    metadata: ModelMetadata
    folder: Path
    reference_rows: int
    labelled_rows: int
    hints: list[str] = field(default_factory=list)
    replaced: str | None = None


def parse_label(value: str | None) -> Any:
    """A class label given as text (a command line, a form field): a whole number when it reads
    as one, true/false as booleans, else the text; None or "" for none."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return {"true": True, "false": False}.get(value.lower(), value)


# ---------------------------------------------------------------------------------- drafting


def _positive_default(values: Sequence[Any]) -> Any:
    """1 (or True) for 0/1 labels, else the second label in sorted order (scikit-learn's
    ``classes_[1]``)."""
    uniq = sorted({label_key(v) for v in values}, key=str)
    if set(uniq) <= {0, 1}:
        return 1
    if len(uniq) < 2:
        raise RegistrationError(
            f"the target has one value only ({uniq}); a classifier needs two", field="target"
        )
    return uniq[1]


def infer_task(y: pd.Series) -> Task:
    """Binary for two labels, multiclass for a few whole or text labels, else regression."""
    labels = y.dropna()
    n = labels.nunique()
    if n <= 2:
        return "binary_classification"
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    whole = numeric and bool(np.all(np.mod(labels.to_numpy(dtype=float), 1) == 0))
    if (not numeric or whole) and n <= 20:
        return "multiclass_classification"
    if not numeric:
        raise RegistrationError(
            f"target {y.name!r} has {n} text labels: too many for a classifier", field="target"
        )
    return "regression"


def draft_features(
    df: pd.DataFrame, exclude: Sequence[str], categorical: Sequence[str]
) -> tuple[list[FeatureEntry], list[str]]:
    """Features from the reference's columns, and hints for the summary (integer columns with few
    distinct values, which may be categories)."""
    unknown = sorted(set(categorical) - set(df.columns))
    if unknown:
        raise RegistrationError(
            f"--categorical names columns the reference lacks: {unknown}", field="categorical"
        )
    features, hints = [], []
    for col in df.columns:
        if col in exclude:
            continue
        try:
            entry, hint = _draft_one(df[col], str(col), col in categorical)
        except (ValidationError, ValueError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise RegistrationError(f"column {str(col)[:140]!r}: {reason}") from None
        except TypeError:
            raise RegistrationError(
                f"column {str(col)[:140]!r} holds lists or objects: a feature is a number, a "
                "category or a boolean"
            ) from None
        features.append(entry)
        if hint:
            hints.append(hint)
    return features, hints


def _draft_one(s: pd.Series, name: str, categorical: bool) -> tuple[FeatureEntry, str | None]:
    if categorical or not pd.api.types.is_numeric_dtype(s):
        cats = sorted({str(v) for v in s.dropna().unique()})
        hint = (
            f"{name}: {len(cats):,} categories; an identifier is no feature"
            if len(cats) > 1_000
            else None
        )
        return FeatureEntry(name=name, kind="categorical", categories=cats), hint
    if pd.api.types.is_bool_dtype(s):
        return FeatureEntry(name=name, kind="boolean"), None
    x = s.dropna().to_numpy(dtype=float)
    distinct = np.unique(x[np.isfinite(x)])
    hint = None
    if x.size and np.all(np.mod(distinct, 1) == 0) and distinct.size <= FEW_DISTINCT:
        hint = (f"{name}: {distinct.size} distinct whole values; if these are codes, register "
                f"with --categorical {name}")  # fmt: skip
    return FeatureEntry(name=name, kind="numeric"), hint


def api_values(df: pd.DataFrame, manifest: Manifest) -> pd.DataFrame:
    """The feature columns as the API receives them: categories as strings, missing as None."""
    out = {}
    for f in manifest.features:
        s = df[f.name]
        if f.kind == "categorical":
            out[f.name] = s.map(lambda v: None if pd.isna(v) else str(v)).astype(object)
        elif f.kind == "boolean":
            out[f.name] = s.astype(object).where(s.notna(), None)
        else:
            try:
                out[f.name] = pd.to_numeric(s, errors="raise").astype(float)
            except (TypeError, ValueError):
                bad = s[pd.to_numeric(s, errors="coerce").isna() & s.notna()].iloc[0]
                raise RegistrationError(
                    f"column {f.name!r} is numeric in the manifest but holds {bad!r}",
                    field="reference",
                ) from None
    return pd.DataFrame(out, columns=[f.name for f in manifest.features])


# ---------------------------------------------------------------------------------- registering


def _manifest(reg: Registration, hints: list[str]) -> Manifest:
    df = reg.reference
    if reg.manifest is not None:
        base = reg.manifest
        if base.name != reg.name:
            base = base.model_copy(update={"name": reg.name})
        missing = [f.name for f in base.features if f.name not in df.columns]
        if missing:
            raise RegistrationError(
                f"the reference lacks the manifest's features {missing}", field="reference"
            )
        if reg.target is not None and base.target not in (None, reg.target):
            raise RegistrationError(
                f"--target {reg.target!r} differs from the manifest's {base.target!r}",
                field="target",
            )
        target = reg.target or base.target
        return Manifest.parse(
            {**base.model_dump(exclude_none=True), "target": target}, "manifest"
        ) if target else base  # fmt: skip
    if reg.target is not None and reg.target not in df.columns:
        raise RegistrationError(
            f"the reference has no target column {reg.target!r}", field="target"
        )
    task = reg.task
    if task is None:
        if reg.target is None:
            raise RegistrationError(
                "give --task (or --target, to infer it from the labels)", field="task"
            )
        task = infer_task(df[reg.target])
    exclude = [*([reg.target] if reg.target else []), *reg.output_cols]
    features, more = draft_features(df, exclude, reg.categorical)
    hints.extend(more)
    if not features:
        raise RegistrationError("the reference has no feature columns", field="reference")
    data: dict[str, Any] = {
        "name": reg.name,
        "task": task,
        "target": reg.target,
        "features": [f.model_dump(exclude_defaults=True) for f in features],
    }
    if task == "multiclass_classification" and reg.target is not None:
        data["class_labels"] = class_labels(df[reg.target])
    return Manifest.parse(data, "draft manifest")


def class_labels(y: pd.Series) -> list[Any]:
    """A multiclass target's labels in score order, as scikit-learn's ``classes_`` and a label
    encoder order them: whole numbers by value (1.0 as 1), else as sorted text."""
    keys = {label_key(v) for v in y.dropna()}
    if all(isinstance(k, int) for k in keys):
        return sorted(keys)
    return sorted(str(k) for k in keys)


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _reorder_to_artifact(manifest: Manifest, model: TabularModel) -> Manifest:
    """The features in the artifact's own order where it names them; an error naming any column
    the artifact needs and the reference lacks, or the other way round."""
    names = model.artifact_feature_names()
    if names is None:
        return manifest
    have = {f.name: f for f in manifest.features}
    missing = [n for n in names if n not in have]
    extra = [n for n in have if n not in names]
    if missing:
        raise RegistrationError(
            f"the model takes columns the reference lacks: {missing}", field="reference"
        )
    if extra:
        raise RegistrationError(
            f"the reference has columns the model does not take: {extra}; drop them, or declare "
            "the features in --manifest",
            field="reference",
        )
    if names == [f.name for f in manifest.features]:
        return manifest
    return manifest.model_copy(update={"features": [have[n] for n in names]})


def _align_categories(manifest: Manifest, model: TabularModel) -> Manifest:
    """Categorical features as the artifact has them: a booster that stores its categories
    (XGBoost ``enable_categorical``, LightGBM ``pandas_categorical``) fixes their codes' order; a
    column that is text in the reference but numeric in the model is an error naming it."""
    declared = model.artifact_categories()
    if declared is None:
        return manifest
    features = []
    for f in manifest.features:
        if f.name not in declared:
            if f.kind == "categorical":
                raise RegistrationError(
                    f"column {f.name!r} holds categories, but the model takes it as a number",
                    field="reference",
                )
            features.append(f)
            continue
        stored = declared[f.name]
        if stored is None:  # categorical codes the booster learned from numbers: keep numbers
            features.append(f)
        elif f.kind != "categorical":
            raise RegistrationError(
                f"the model takes column {f.name!r} as a category ({', '.join(stored[:5])}, ...); "
                "the reference holds numbers",
                field="reference",
            )
        else:
            features.append(f.model_copy(update={"categories": stored}))
    return manifest.model_copy(update={"features": features})


def _labels(reg: Registration, manifest: Manifest) -> pd.DataFrame | None:
    """Labelled rows (features and target): the holdout file's, else the reference's."""
    if manifest.target is None:
        return None
    source = reg.holdout if reg.holdout is not None else reg.reference
    where = "the holdout file" if reg.holdout is not None else "the reference"
    where_field = "holdout" if reg.holdout is not None else "reference"
    if manifest.target not in source.columns:
        raise RegistrationError(
            f"{where} has no target column {manifest.target!r}", field=where_field
        )
    missing = [f.name for f in manifest.features if f.name not in source.columns]
    if missing:
        raise RegistrationError(f"{where} lacks the features {missing}", field=where_field)
    rows = source[source[manifest.target].notna()]
    if manifest.task == "regression":  # an infinite label judges nothing
        values = pd.to_numeric(rows[manifest.target], errors="coerce")
        rows = rows[np.isfinite(values.to_numpy(dtype=float))]
    return rows if len(rows) else None


def _given_outputs(reg: Registration, manifest: Manifest, rows: pd.DataFrame) -> BatchPrediction:
    return outputs_from_columns(
        manifest, rows, reg.prediction_col, reg.probability_col, reg.score_cols
    )


def outputs_from_columns(
    manifest: Manifest,
    rows: pd.DataFrame,
    prediction_col: str | None,
    probability_col: str | None = None,
    score_cols: Sequence[str] = (),
) -> BatchPrediction:
    """A model served elsewhere: its outputs as a frame's columns hold them (the same shapes as
    a served model's ``predict_frame``); RegistrationError naming a column that does not fit."""

    def numbers(col: str, unit: bool) -> np.ndarray:
        values = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | ((values < 0) | (values > 1) if unit else False)
        if bad.any():
            what = "probabilities in [0, 1]" if unit else "finite numbers"
            raise RegistrationError(
                f"column {col!r} must hold {what}; row {int(np.argmax(bad))} holds "
                f"{rows[col].iloc[int(np.argmax(bad))]!r}",
                field="reference",
            )
        return values

    if manifest.task == "regression":
        assert prediction_col is not None
        return BatchPrediction(numbers(prediction_col, unit=False))
    if manifest.task == "binary_classification":
        proba = numbers(probability_col, unit=True) if probability_col else None
        if prediction_col is not None:
            # As /models/{name}/predictions takes them: 0/1 or false/true, 1 the positive class.
            keys = rows[prediction_col].map(label_key)
            bad = sorted({str(k) for k in keys if k not in (0, 1)})
            if bad:
                raise RegistrationError(
                    f"column {prediction_col!r} holds {bad[:5]}: a binary classifier's "
                    "predictions are 0/1 or false/true (1: the positive class)",
                    field="prediction_col",
                )
            values = keys.to_numpy(dtype=float)
        else:
            assert proba is not None
            values = (proba >= manifest.threshold).astype(float)
        return BatchPrediction(values, proba)
    classes = [label_key(c) for c in manifest.class_labels or ()]
    scores = None
    if score_cols:
        scores = np.column_stack([numbers(c, unit=True) for c in score_cols])
    if prediction_col is not None:
        keys = rows[prediction_col].map(label_key)
        unknown = sorted({str(k) for k in keys if k not in classes})
        if unknown:
            raise RegistrationError(
                f"column {prediction_col!r} holds {unknown[:5]}, not among the classes "
                f"{manifest.class_labels}",
                field="prediction_col",
            )
        index = keys.map({k: i for i, k in enumerate(classes)}).to_numpy(dtype=int)
    else:
        assert scores is not None
        index = np.argmax(scores, axis=1)
    proba = scores[np.arange(len(index)), index] if scores is not None else None
    return BatchPrediction(index.astype(float), proba, scores)


def _check_outputs(reg: Registration, manifest: Manifest) -> None:
    """Output columns fit the task and exist in every frame given."""
    if not reg.output_cols:
        return
    task = manifest.task
    if manifest.target is not None and manifest.target in reg.output_cols:
        raise RegistrationError(
            f"{manifest.target!r} is the target: the output columns hold the model's own outputs",
            field="prediction_col",
        )
    features = {f.name for f in manifest.features}
    both = [c for c in reg.output_cols if c in features]
    if both:
        raise RegistrationError(f"output columns {both} are also features", field="manifest")
    if reg.probability_col is not None and task != "binary_classification":
        raise RegistrationError("--probability-col is for binary classifiers (a multiclass "
                                "one gives --score-cols)", field="probability_col")  # fmt: skip
    if reg.score_cols and task != "multiclass_classification":
        raise RegistrationError("--score-cols is for multiclass classifiers",
                                field="score_cols")  # fmt: skip
    if task == "regression" and reg.prediction_col is None:
        raise RegistrationError("a regressor's output is --prediction-col", field="prediction_col")
    if reg.score_cols and len(reg.score_cols) != len(manifest.class_labels or ()):
        raise RegistrationError(
            f"--score-cols names {len(reg.score_cols)} columns; the classes are "
            f"{manifest.class_labels}: one column each, in that order",
            field="score_cols",
        )
    for frame, where in ((reg.reference, "reference"), (reg.holdout, "holdout")):
        if frame is None:
            continue
        missing = [c for c in reg.output_cols if c not in frame.columns]
        if missing:
            raise RegistrationError(f"the {where} has no output columns {missing}", field=where)


def _holdout(
    outputs: Callable[[pd.DataFrame], BatchPrediction],
    manifest: Manifest,
    rows: pd.DataFrame,
    seed: int,
) -> tuple[dict[str, float], dict[str, Any] | None, dict[str, float], int]:
    """(holdout figures, calibration or None, calibration errors, rows judged) of the
    ``outputs`` of the labelled rows. A classifier's calibration is fitted on one half of the
    labelled rows and judged, with the figures, on the other half (all rows when there are too
    few); a classifier known by its predictions alone gets the figures those give."""
    assert manifest.target is not None
    out = outputs(rows)
    y_raw = rows[manifest.target]
    if manifest.task == "regression":
        y = pd.to_numeric(y_raw, errors="coerce").to_numpy(dtype=float)
        return regression_metrics(y, out.values), None, {}, len(rows)
    if manifest.task == "multiclass_classification":
        index = {label_key(c): i for i, c in enumerate(manifest.class_labels or ())}
        keys = y_raw.map(label_key)
        unknown = sorted({str(k) for k in keys if k not in index})
        if unknown:
            raise RegistrationError(
                f"labels {unknown[:10]} are not among the class_labels {manifest.class_labels}",
                field="target",
            )
        y_idx = keys.map(index).to_numpy(dtype=int)
        if out.scores is None:
            k = len(index)
            one_hot = np.eye(k)[out.values.astype(int)]
            figures = multiclass_metrics(y_idx, one_hot)
            return {m: v for m, v in figures.items() if m != "log_loss"}, None, {}, len(rows)
        return multiclass_metrics(y_idx, out.scores), None, {}, len(rows)
    positive = manifest.positive_class
    y = (y_raw.map(label_key) == label_key(positive)).to_numpy(dtype=int)
    proba = out.probabilities
    if proba is None:
        figures = classification_metrics(y, out.values, 0.5)
        known = ("accuracy", "precision", "recall", "f1", "positive_rate")
        return {m: v for m, v in figures.items() if m in known}, None, {}, len(y)
    n = len(y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if n < 2 * MIN_CALIBRATION_ROWS or len(np.unique(y)) < 2:
        return classification_metrics(y, proba, manifest.threshold), None, {}, n
    fit_idx, judge_idx = order[: n // 2], order[n // 2 :]
    calibrator = fit_calibrator(proba[fit_idx], y[fit_idx])
    yj, pj = y[judge_idx], proba[judge_idx]
    ece = {
        "raw": expected_calibration_error(yj, pj),
        "calibrated": expected_calibration_error(yj, calibrator.apply(pj)),
    }
    keep = calibrator.to_dict() if ece["calibrated"] < ece["raw"] else None
    return classification_metrics(yj, pj, manifest.threshold), keep, ece, len(judge_idx)


def register(model_dir: Path, reg: Registration) -> Registered:
    """Register ``reg`` into ``model_dir``: validate, predict the reference, judge, profile, write.

    Raises:
        RegistrationError, ManifestError: bad input, naming the column, field or file.
    """
    try:
        check_name(reg.name)
    except ValueError as exc:
        raise RegistrationError(str(exc), field="name") from None
    # Column names are text (a frame from the Python API may have integer column names).
    reg = dataclasses.replace(
        reg,
        reference=reg.reference.rename(columns=str),
        holdout=reg.holdout.rename(columns=str) if reg.holdout is not None else None,
    )
    if reg.reference.empty:
        raise RegistrationError("the reference has no rows", field="reference")
    hints: list[str] = []
    manifest = _manifest(reg, hints)
    data: bytes | None = None
    if reg.artifact is not None:
        try:
            fmt = check_not_pickle(reg.artifact)
        except ValueError as exc:
            raise RegistrationError(str(exc), field="artifact") from None
        data = Path(reg.artifact).read_bytes()
        file = f"model{Path(reg.artifact).suffix.lower()}"
        manifest = manifest.model_copy(update={"artifact": ArtifactEntry(format=fmt, file=file)})
    elif manifest.artifact is not None:
        raise RegistrationError(
            "the manifest names an artifact: give the file with --artifact", field="artifact"
        )
    updates: dict[str, Any] = {}
    if manifest.task == "binary_classification":
        positive = reg.positive_class if reg.positive_class is not None else manifest.positive_class
        labels = reg.reference[manifest.target].dropna().tolist() if manifest.target else []
        if positive is None and labels:
            positive = _positive_default(labels)
        if (
            positive is not None
            and labels
            and label_key(positive) not in set(map(label_key, labels))
        ):
            raise RegistrationError(
                f"positive class {positive!r} is not among the target's labels "
                f"{sorted(set(map(label_key, labels)), key=str)[:10]}",
                field="positive_class",
            )
        updates["positive_class"] = label_key(positive) if positive is not None else None
        if reg.decision_threshold is not None:
            updates["decision_threshold"] = reg.decision_threshold
    elif reg.positive_class is not None or reg.decision_threshold is not None:
        raise RegistrationError(
            "--positive-class and --threshold apply to binary classifiers", field="positive_class"
        )
    if updates:
        manifest = Manifest.parse({**manifest.model_dump(exclude_none=True), **updates}, "manifest")

    reference = api_values(reg.reference, manifest)
    model: TabularModel | None = None
    if data is not None:
        if reg.output_cols:
            raise RegistrationError(
                "output columns are for a model served elsewhere: with --artifact, mlobs "
                "predicts the reference itself",
                field="prediction_col",
            )
        model = _load(manifest, data)
        manifest = _align_categories(_reorder_to_artifact(manifest, model), model)
        if isinstance(model, OnnxModel) and model.whole_number_inputs():
            whole = set(model.whole_number_inputs())
            manifest = manifest.model_copy(update={"features": [
                f.model_copy(update={"integer": True, "nullable": False})
                if f.name in whole and f.kind == "numeric" else f
                for f in manifest.features
            ]})  # fmt: skip
        model = _load(manifest, data)
        reference = reference[[f.name for f in manifest.features]]
        try:
            out = model.predict_frame(reference)
        except Exception as exc:
            raise RegistrationError(
                f"the model cannot predict its reference: {type(exc).__name__}: {exc}",
                field="reference",
            ) from None
        output: np.ndarray | None = out.monitored
    elif reg.output_cols:
        _check_outputs(reg, manifest)
        given = _given_outputs(reg, manifest, reg.reference)
        # What ingested records are watched by: the probability (or a regressor's value); a
        # classifier known by its predictions alone has no output profile.
        output = given.probabilities if manifest.task != "regression" else given.values
    else:
        output = None

    labelled = _labels(reg, manifest)
    metrics: dict[str, float] = {}
    ece: dict[str, float] = {}
    calibration: dict[str, Any] | None = None
    judged = 0
    if labelled is not None and model is not None:
        served = model

        def predicted(rows: pd.DataFrame) -> BatchPrediction:
            return served.predict_frame(api_values(rows, manifest))

        metrics, calibration, ece, judged = _holdout(predicted, manifest, labelled, reg.seed)
    elif labelled is not None and reg.output_cols:

        def given_outputs(rows: pd.DataFrame) -> BatchPrediction:
            return _given_outputs(reg, manifest, rows)

        metrics, calibration, ece, judged = _holdout(given_outputs, manifest, labelled, reg.seed)

    sha = hashlib.sha256(data).hexdigest() if data is not None else None
    if manifest.artifact is not None:
        artifact = manifest.artifact.model_copy(update={"sha256": sha})
        manifest = manifest.model_copy(update={"artifact": artifact})
    # The reference is part of a version: the same model registered on other rows is another one.
    version = manifest.version or manifest.content_version(f"{sha}:{data_hash(reg.reference)}")
    manifest = manifest.model_copy(update={"version": version})
    manifest = _with_examples(manifest, reference)
    fmt_name = manifest.artifact.format if manifest.artifact is not None else "none"
    library = _LIBRARIES.get(fmt_name)
    meta = ModelMetadata(
        model_name=reg.name,
        algorithm=fmt_name,
        version=version,
        trained_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        train_rows=0,
        holdout_rows=judged,
        holdout_metrics={k: float(v) for k, v in metrics.items() if np.isfinite(v)},
        data_hash=data_hash(reg.reference),
        params={},
        library_versions={library: _version(library)} if library else {},
        decision_threshold=manifest.threshold,
        calibration=calibration,
        calibration_ece=ece,
    )
    profile = ReferenceProfile.build(
        reference,
        features=[f.name for f in manifest.features],
        categorical_features=[f.name for f in manifest.features if f.kind != "numeric"],
        output=output,
        model_name=reg.name,
        model_version=version,
    )
    sample = reference
    if len(sample) > reg.sample_rows:
        sample = sample.sample(n=reg.sample_rows, random_state=reg.seed)
    if manifest.target is not None and manifest.target in reg.reference.columns:
        sample = sample.assign(
            **{manifest.target: reg.reference.loc[sample.index, manifest.target]}
        )
    replaced = _write(Path(model_dir), manifest, meta, data, profile, sample)
    return Registered(
        manifest, meta, Path(model_dir) / reg.name, len(reference), judged, hints, replaced
    )


def _load(manifest: Manifest, data: bytes) -> TabularModel:
    try:
        return model_from_bytes(manifest, None, data)
    except Exception as exc:
        raise RegistrationError(
            f"the artifact does not load as {manifest.artifact.format if manifest.artifact else '?'}: "
            f"{type(exc).__name__}: {exc}",
            field="artifact",
        ) from None


def _with_examples(manifest: Manifest, reference: pd.DataFrame) -> Manifest:
    """Each feature's example (shown in OpenAPI) from a reference row with few missing values."""
    if any(f.example is not None for f in manifest.features):
        return manifest
    row = reference.iloc[int(reference.isna().sum(axis=1).to_numpy().argmin())]
    features = []
    for f in manifest.features:
        v = row[f.name]
        example = None if pd.isna(v) else (_plain(v) if f.kind != "categorical" else str(v))
        features.append(f.model_copy(update={"example": example}))
    return manifest.model_copy(update={"features": features})


def _version(module: str) -> str:
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:  # pragma: no cover - a library without __version__
        return "unknown"


def _write(
    model_dir: Path,
    manifest: Manifest,
    meta: ModelMetadata,
    data: bytes | None,
    profile: ReferenceProfile,
    sample: pd.DataFrame,
) -> str | None:
    """Write the version into a new folder, then swap it in; returns the version it replaced."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".new-{manifest.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if data is not None and manifest.artifact is not None:
            write_atomic(tmp / manifest.artifact.file, data)
        write_json(tmp / METADATA_FILE, meta.to_dict())
        (tmp / PROFILE_FILE).write_text(json.dumps(profile.to_dict(), indent=1))
        sample.reset_index(drop=True).to_parquet(tmp / REFERENCE_SAMPLE_FILE, index=False)
        write_atomic(tmp / MANIFEST_FILE, manifest.to_yaml().encode())
        _sync(tmp)  # on disk before the swap makes it the version: a crash leaves one or the other
        return _swap(model_dir / manifest.name, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sync(folder: Path) -> None:
    """fsync every file of ``folder`` and the folder itself."""
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(model_dir: Path, *, older_than: float = 60.0) -> list[str]:
    """Tidy what an interrupted registration or removal left in ``model_dir`` (at a service's
    start): a version moved aside whose successor never arrived is put back; unfinished new
    folders and removed ones are deleted. Only leftovers older than ``older_than`` seconds are
    touched, so a registration in progress elsewhere is left alone. Returns what was done."""
    import time

    root = Path(model_dir)
    if not root.is_dir():
        return []
    done = []
    now = time.time()
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for p in sorted(root.iterdir()):
                if not p.is_dir() or not p.name.startswith((".old-", ".new-", ".removed-")):
                    continue
                try:
                    if now - p.stat().st_mtime < older_than:
                        continue
                except OSError:
                    continue
                name = p.name.split("-", 1)[1].rsplit("-", 1)[0]
                if p.name.startswith(".old-") and not (root / name).exists():
                    os.rename(p, root / name)
                    done.append(f"restored {name} from {p.name}")
                else:
                    shutil.rmtree(p, ignore_errors=True)
                    done.append(f"removed {p.name}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return done


def _swap(target: Path, new: Path) -> str | None:
    """Put ``new`` in ``target``'s place, one registration at a time (a lock file in the model
    directory). The old folder moves aside first and is removed after: between the two renames a
    reader finds no folder and tries again (the catalogue poll)."""
    with open(target.parent / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _swap_locked(target, new)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _swap_locked(target: Path, new: Path) -> str | None:
    replaced = None
    old = None
    if target.exists():
        try:
            replaced = Manifest.read(target / MANIFEST_FILE).version
        except (OSError, ManifestError):
            replaced = "unknown"
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return replaced


def remove(model_dir: Path, name: str) -> str | None:
    """Remove a model from the catalogue (its history in the database stays); returns the version
    removed (None when its manifest was unreadable: a broken model can be removed too)."""
    try:
        check_name(name)
    except ValueError as exc:
        raise RegistrationError(str(exc), field="name") from None
    folder = Path(model_dir) / name
    with open(Path(model_dir) / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not folder.is_dir():
                raise RegistrationError(f"no model {name!r} in {model_dir}", field="name")
            try:
                version = read_manifest(folder).version
            except Exception:  # unreadable: removing it is the way out
                version = None
            gone = folder.with_name(f".removed-{name}-{uuid.uuid4().hex[:8]}")
            os.rename(folder, gone)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    shutil.rmtree(gone, ignore_errors=True)
    return version


def purge_history(engine: Engine, name: str) -> int:
    """Delete a model's rows from every table (predictions, windows, results, labels, alerts and
    their events); returns how many rows went."""
    deleted = 0
    with engine.begin() as conn:
        # Children first: SQLite enforces no foreign key unless asked to.
        alert_ids = select(tables.alerts.c.id).where(tables.alerts.c.model_name == name)
        window_ids = select(tables.drift_windows.c.id).where(
            tables.drift_windows.c.model_name == name
        )
        ev, wc = tables.alert_events, tables.drift_window_counts
        deleted += conn.execute(delete(ev).where(ev.c.alert_id.in_(alert_ids))).rowcount
        deleted += conn.execute(delete(wc).where(wc.c.window_id.in_(window_ids))).rowcount
        for table in tables.metadata.sorted_tables[::-1]:
            if "model_name" in table.c:
                deleted += conn.execute(delete(table).where(table.c.model_name == name)).rowcount
    return deleted
