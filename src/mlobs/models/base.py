"""The base of the models that mlobs encodes for: schema, preprocessing, training with a holdout,
metadata, inference.

A subclass names its algorithm and implements four small hooks (fit the estimator, predict raw
scores from an encoded matrix, and turn the estimator into bytes and back); everything else,
including the single-row fast path, lives here once. The schema comes from the model's manifest.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

from mlobs.models.preprocessing import FeatureSchema
from mlobs.models.schema import ModelSchema, Task
from mlobs.stats.estimation import (
    Calibrator,
    estimate_classification_metrics,
    expected_calibration_error,
    fit_calibrator,
)

FloatArray = np.ndarray

# The share of a classifier's training split held out of fitting to calibrate its probabilities
# (and to tune its decision threshold).
CALIBRATION_SHARE = 0.2
# Options of mlobs's own, kept in ``params`` (and so in the metadata) but never passed to a library:
# ``tune_threshold`` picks the F1-best decision threshold on the calibration slice instead of 0.5
# (rare positives); ``log_target`` fits a regressor on log(target).
OPTIONS = ("tune_threshold", "log_target")


@dataclass(frozen=True)
class ModelMetadata:
    """What a trained model was built from and how well it did on its holdout.

    Classifiers also record their probability calibration: ``calibration`` is the calibrator
    (:meth:`Calibrator.to_dict`) fitted on a slice of the training split, or None when it did not
    lower the expected calibration error on the holdout; ``calibration_ece`` holds that error for
    the raw and the calibrated probabilities (``{"raw": ..., "calibrated": ...}``).
    """

    model_name: str
    algorithm: str
    version: str
    trained_at: str
    train_rows: int
    holdout_rows: int
    holdout_metrics: Mapping[str, float]
    data_hash: str
    params: Mapping[str, Any]
    library_versions: Mapping[str, str]
    decision_threshold: float = 0.5
    calibration: Mapping[str, Any] | None = None
    calibration_ece: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["holdout_metrics"] = dict(self.holdout_metrics)
        d["params"] = dict(self.params)
        d["library_versions"] = dict(self.library_versions)
        d["calibration"] = None if self.calibration is None else dict(self.calibration)
        d["calibration_ece"] = dict(self.calibration_ece)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelMetadata:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @classmethod
    def registered(cls, name: str, algorithm: str, version: str, threshold: float) -> ModelMetadata:
        """Metadata of a model registered without any: nothing known of its training."""
        return cls(
            model_name=name, algorithm=algorithm, version=version, trained_at="", train_rows=0,
            holdout_rows=0, holdout_metrics={}, data_hash="", params={}, library_versions={},
            decision_threshold=threshold,
        )  # fmt: skip

    def with_version(self, version: str, threshold: float) -> ModelMetadata:
        """The same metadata under the manifest's version and decision threshold."""
        return replace(self, version=version, decision_threshold=threshold)


def label_key(value: Any) -> Any:
    """A class label as one comparable value: whole floats and booleans as ints (a CSV's 1.0, a
    JSON true and a model's 1 are the same class), anything else as its text."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    return str(value)


def class_columns(artifact_classes: Sequence[Any], classes: Sequence[Any]) -> list[int]:
    """For each of a multiclass manifest's classes, the artifact's score column that holds it
    (the artifact may order its classes otherwise); ValueError naming any class either lacks."""
    keys = [label_key(c) for c in artifact_classes]
    wanted = [label_key(c) for c in classes]
    missing = [c for c, k in zip(classes, wanted, strict=True) if k not in keys]
    extra = [c for c, k in zip(artifact_classes, keys, strict=True) if k not in wanted]
    if missing or extra:
        raise ValueError(
            f"the model's classes {list(artifact_classes)} differ from the manifest's "
            f"{list(classes)} (missing {missing}, unknown {extra})"
        )
    return [keys.index(k) for k in wanted]


@dataclass(frozen=True)
class Prediction:
    """One model output: the prediction and, for classifiers, a probability: the positive
    class's (binary) or the predicted class's (multiclass, whose ``scores`` hold every class's
    in the manifest's class order and whose ``value`` is the predicted class's index)."""

    value: float
    probability: float | None = None
    scores: tuple[float, ...] | None = None

    @property
    def monitored(self) -> float:
        """The number drift and the value histogram watch: the probability, else the value."""
        return self.value if self.probability is None else self.probability


@dataclass(frozen=True)
class BatchPrediction:
    values: FloatArray
    probabilities: FloatArray | None = None
    scores: FloatArray | None = None  # multiclass: [N, K]

    @property
    def monitored(self) -> FloatArray:
        return self.values if self.probabilities is None else self.probabilities


@dataclass
class TrainingResult:
    """What ``fit`` returns: the metadata plus the split it used, for callers that profile data."""

    metadata: ModelMetadata
    train: pd.DataFrame = field(repr=False)
    holdout: pd.DataFrame = field(repr=False)


def data_hash(df: pd.DataFrame) -> str:
    """A stable SHA-256 of a frame's values and column names."""
    h = hashlib.sha256()
    h.update(json.dumps(list(map(str, df.columns))).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def classification_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    pred = (proba >= threshold).astype(int)
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "log_loss": skm.log_loss(y, np.clip(proba, 1e-12, 1 - 1e-12), labels=[0, 1]),
        "positive_rate": float(np.mean(y)),
    }
    if len(np.unique(y)) == 2:
        out["roc_auc"] = skm.roc_auc_score(y, proba)
        out["average_precision"] = skm.average_precision_score(y, proba)
    return {k: float(v) for k, v in out.items()}


def best_f1_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The probability threshold with the highest F1 on (y, proba); 0.5 when y has one class."""
    if len(np.unique(y)) < 2:
        return 0.5
    precision, recall, thresholds = skm.precision_recall_curve(y, proba)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def multiclass_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Accuracy, macro precision, recall and F1, and log loss of class indices ``y`` against
    [N, K] ``scores`` (the predicted class is the highest score)."""
    k = scores.shape[1]
    pred = np.argmax(scores, axis=1)
    labels = list(range(k))
    p = np.clip(scores, 1e-12, 1.0)
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, labels=labels, average="macro", zero_division=0),
        "recall": skm.recall_score(y, pred, labels=labels, average="macro", zero_division=0),
        "f1": skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0),
        "log_loss": skm.log_loss(y, p / p.sum(axis=1, keepdims=True), labels=labels),
    }
    return {key: float(v) for key, v in out.items()}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    nz = y != 0
    return {
        "mae": float(skm.mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mape": float(np.mean(np.abs((y[nz] - pred[nz]) / y[nz]))) if nz.any() else float("nan"),
        "r2": float(skm.r2_score(y, pred)),
    }


class TabularModel(ABC):
    """A trained (or trainable) model over one schema.

    Subclasses set ``algorithm``, ``artifact_suffix`` and ``impute``, and implement the hooks.
    Inference is single-threaded: on a busy two-core machine OpenMP threads cost more than they gain.
    """

    algorithm: ClassVar[str]
    artifact_suffix: ClassVar[str]
    impute: ClassVar[bool] = False
    default_params: ClassVar[Mapping[str, Any]] = {}
    libraries: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: ModelSchema, params: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.params: dict[str, Any] = {**self.default_params, **(params or {})}
        self.schema: FeatureSchema | None = None
        self.metadata: ModelMetadata | None = None
        # A binary classifier's positive class, where the artifact's own classes name it.
        self.positive_class: Any = None
        # The performance_degradation rule its manifest states (None: its task's default).
        self.performance_rule: Mapping[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def task(self) -> Task:
        return self.spec.task

    @property
    def version(self) -> str:
        return self.metadata.version if self.metadata else "untrained"

    @property
    def is_classifier(self) -> bool:
        return self.spec.task != "regression"

    @property
    def is_multiclass(self) -> bool:
        return self.spec.task == "multiclass_classification"

    @property
    def classes(self) -> tuple[Any, ...]:
        """A multiclass classifier's labels in score order (empty for the others)."""
        return self.spec.classes

    @property
    def tune_threshold(self) -> bool:
        return bool(self.params.get("tune_threshold", False))

    def check_outputs(self, n: int, what: str = "outputs") -> None:
        """ValueError when an artifact's number of score columns does not fit the task: one for
        a binary classifier or a regressor, one per class for a multiclass classifier."""
        want = len(self.classes) if self.is_multiclass else 1
        if max(n, 1) != want:
            kind = f"{want} classes" if self.is_multiclass else f"a {self.task}"
            raise ValueError(f"the model has {n} {what}; the manifest declares {kind}")

    def artifact_feature_names(self) -> list[str] | None:
        """The input columns the loaded artifact names, in its order; None where it names none."""
        return None

    def artifact_categories(self) -> dict[str, list[str] | None] | None:
        """The features the loaded artifact treats as categories, with the categories it stores
        (in code order) or None; None when the artifact declares no feature types."""
        return None

    def library_params(self, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """``params`` without mlobs's own options and the names in ``exclude``."""
        return {k: v for k, v in self.params.items() if k not in OPTIONS and k not in exclude}

    # ------------------------------------------------------------------ hooks

    @abstractmethod
    def _fit_estimator(self, x: FloatArray, y: np.ndarray, seed: int) -> None:
        """Train on an encoded matrix."""

    @abstractmethod
    def _raw_predict(self, x: FloatArray) -> FloatArray:
        """Positive-class probability (binary), [N, K] class scores in the manifest's class
        order (multiclass) or the predicted value (regressors)."""

    @abstractmethod
    def estimator_bytes(self) -> bytes:
        """The estimator in its library's own non-pickle format."""

    @abstractmethod
    def load_estimator(self, data: bytes) -> None:
        """Restore the estimator from ``estimator_bytes()`` output."""

    # ------------------------------------------------------------------ training

    def fit(self, df: pd.DataFrame, *, seed: int = 0, holdout: float = 0.2) -> TrainingResult:
        """Train on ``df`` (features and target) with a stratified holdout, and record metadata.

        A classifier's estimator is fitted on 80% of the training split; the other 20%
        (``CALIBRATION_SHARE``, stratified) is its calibration slice, which fits the isotonic
        calibrator and, with ``tune_threshold``, picks the decision threshold. The holdout then
        judges the calibrator: it is kept only if it lowers the expected calibration error there.
        """
        target = self.spec.target
        missing = [c for c in [*self.spec.feature_names, target] if c not in df.columns]
        if missing:
            raise ValueError(f"training frame lacks columns {missing}")
        stratify = df[target] if self.is_classifier else None
        train, test = train_test_split(df, test_size=holdout, random_state=seed, stratify=stratify)
        self.schema = FeatureSchema.fit(self.spec, train, impute=self.impute)
        if not self.is_classifier:
            self._fit_estimator(self.schema.transform(train), train[target].to_numpy(), seed)
            scores = regression_metrics(
                test[target].to_numpy(), self._raw_predict(self.schema.transform(test))
            )
            calibration: dict[str, Any] | None = None
            ece: dict[str, float] = {}
            threshold = 0.5
        else:
            fit_part, cal = train_test_split(
                train, test_size=CALIBRATION_SHARE, random_state=seed, stratify=train[target]
            )
            self._fit_estimator(self.schema.transform(fit_part), fit_part[target].to_numpy(), seed)
            y_cal = cal[target].to_numpy()
            raw_cal = self._raw_predict(self.schema.transform(cal))
            threshold = best_f1_threshold(y_cal, raw_cal) if self.tune_threshold else 0.5
            calibrator = fit_calibrator(raw_cal, y_cal)
            y = test[target].to_numpy()
            out = self._raw_predict(self.schema.transform(test))
            scores = classification_metrics(y, out, threshold)
            ece = {
                "raw": expected_calibration_error(y, out),
                "calibrated": expected_calibration_error(y, calibrator.apply(out)),
            }
            calibration = calibrator.to_dict() if ece["calibrated"] < ece["raw"] else None
        digest = data_hash(df)
        versions = {m: str(importlib.import_module(m).__version__) for m in self.libraries}
        fingerprint = json.dumps([digest, self.algorithm, self.params, versions], sort_keys=True)
        self.metadata = ModelMetadata(
            model_name=self.name,
            algorithm=self.algorithm,
            version=hashlib.sha256(fingerprint.encode()).hexdigest()[:12],
            trained_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            train_rows=len(train),
            holdout_rows=len(test),
            holdout_metrics=scores,
            data_hash=digest,
            params=dict(self.params),
            library_versions=versions,
            decision_threshold=threshold,
            calibration=calibration,
            calibration_ece=ece,
        )
        return TrainingResult(self.metadata, train, test)

    # ------------------------------------------------------------------ inference

    def _require_schema(self) -> FeatureSchema:
        if self.schema is None:
            raise RuntimeError(f"model {self.name!r} is not trained")
        return self.schema

    def _output(self, raw: Any) -> Prediction:
        if self.is_multiclass:
            scores = np.asarray(raw, dtype=np.float64).reshape(-1)
            best = int(np.argmax(scores))
            return Prediction(float(best), float(scores[best]), tuple(scores.tolist()))
        raw = float(raw)
        if self.is_classifier:
            threshold = self.metadata.decision_threshold if self.metadata else 0.5
            return Prediction(value=float(raw >= threshold), probability=raw)
        return Prediction(value=raw)

    def predict_record(self, record: Mapping[str, Any]) -> Prediction:
        """Predict one validated record (a dict with every feature key): the single-row fast path."""
        return self._output(self._raw_predict(self._require_schema().transform_one(record))[0])

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> BatchPrediction:
        """Predict many validated records in one call to the estimator."""
        return self._batch(self._raw_predict(self._require_schema().transform_records(records)))

    def predict_frame(self, df: pd.DataFrame) -> BatchPrediction:
        """Predict every row of a frame with the feature columns."""
        return self._batch(self._raw_predict(self._require_schema().transform(df)))

    # ------------------------------------------------------------------ label-free estimation

    def _require_classifier_metadata(self) -> ModelMetadata:
        if not self.is_classifier:
            raise TypeError(f"model {self.name!r} is a regressor: it has no probabilities")
        if self.metadata is None:
            raise RuntimeError(f"model {self.name!r} is not trained")
        return self.metadata

    def calibrate(self, proba: FloatArray) -> FloatArray:
        """Calibrated positive-class probabilities for raw ones (the raw ones when training kept
        no calibrator)."""
        meta = self._require_classifier_metadata()
        raw = np.asarray(proba, dtype=np.float64)
        if meta.calibration is None:
            return raw
        return Calibrator.from_dict(meta.calibration).apply(raw)

    def estimate_performance(self, proba_raw: FloatArray) -> dict[str, float]:
        """Label-free expected accuracy, precision, recall, F1, ROC AUC and positive rate of this
        classifier's predictions for raw probabilities ``proba_raw`` (see
        :func:`mlobs.stats.estimation.estimate_classification_metrics`).

        Raises:
            TypeError: the model is a regressor.
            RuntimeError: the model is not trained.
            ValueError: ``proba_raw`` is empty or not probabilities.
        """
        meta = self._require_classifier_metadata()
        raw = np.asarray(proba_raw, dtype=np.float64)
        y_pred = (raw >= meta.decision_threshold).astype(np.float64)
        return estimate_classification_metrics(self.calibrate(raw), y_pred, scores=raw)

    def _batch(self, raw: FloatArray) -> BatchPrediction:
        raw = np.asarray(raw, dtype=np.float64)
        if self.is_multiclass:
            best = np.argmax(raw, axis=1)
            return BatchPrediction(best.astype(np.float64), raw[np.arange(len(raw)), best], raw)
        if self.is_classifier:
            threshold = self.metadata.decision_threshold if self.metadata else 0.5
            return BatchPrediction((raw >= threshold).astype(np.float64), raw)
        return BatchPrediction(raw)
