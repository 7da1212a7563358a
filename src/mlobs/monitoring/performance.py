"""Ground truth and model performance: late labels joined to logged predictions, realized figures
over windows of labels, a label-free estimate beside them, and a concept-drift detector over the
error stream.

The flow:

* ``record`` stores labels (one transaction per request; a label is unique per prediction).
* ``process`` (the runtime's background loop, in every worker) consumes stored labels in id
  order through the model's *label tracker*: each label updates the streaming concept-drift
  detector and is counted into the open performance window of ``window_size`` labels. The
  tracker and the labels it consumed are written in one transaction under the tracker's
  revision, so across processes each label is consumed exactly once, and a restart resumes from
  the stored detector state.
* A completed window is evaluated once (realized figures, the estimate over the same
  predictions, the detector's alarms in it), stored as history and handed to the listeners (the
  alert manager raises ``performance_degradation`` and clears ``concept_drift``).
* ``estimate`` computes the classifiers' label-free estimate over the latest logged predictions
  and records it once per ``estimate_window`` predictions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from sklearn import metrics as skm

from mlobs.errors import Conflict
from mlobs.models.base import TabularModel, label_key, multiclass_metrics, regression_metrics
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.ports import LabelStore
from mlobs.monitoring.records import LabelRecord, PerformanceResult, PredictionRecord, TrackerState
from mlobs.stats.concept import (
    ConceptDriftDetector,
    detector_for_classifier,
    detector_for_regressor,
    detector_from_state,
)

log = logging.getLogger(__name__)

CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSOR_METRICS = ("mae", "rmse", "mape", "r2")
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


class LabelConflict(Conflict):
    """A label contradicts the one stored for the same prediction (labels are not overwritten:
    the first stands, and the caller learns it with a 409)."""

    def __init__(self, index: int, prediction_id: str, stored: float, sent: float) -> None:
        super().__init__(
            f"prediction {prediction_id} already has the label {stored:g}; "
            f"a different label ({sent:g}) is refused",
            current=f"{stored:g}",
        )
        self.index, self.prediction_id, self.stored, self.sent = index, prediction_id, stored, sent


def label_number(model: TabularModel | None, rec: PredictionRecord, value: Any) -> float:
    """A label as stored: 0/1 for a binary classifier, the class's index for a multiclass one,
    the number for a regressor. ValueError saying what the model takes otherwise. (Without the
    model, the prediction's own output tells its kind.)"""
    name = rec.model_name
    if rec.scores is not None or (model is not None and model.is_multiclass):
        classes = model.classes if model is not None else ()
        keys = [label_key(c) for c in classes]
        if isinstance(value, bool) or label_key(value) not in keys:
            raise ValueError(f"model {name!r} has the classes {list(classes)}: actual must be one")
        return float(keys.index(label_key(value)))
    if isinstance(value, str):
        raise ValueError(f"model {name!r} takes a number or a boolean, not text")
    classifier = model.is_classifier if model is not None else rec.probability is not None
    if classifier:
        if isinstance(value, bool) or value in (0, 1):
            return float(value)
        raise ValueError(f"model {name!r} is a classifier: actual must be 0/1 or false/true")
    if isinstance(value, bool):
        raise ValueError(f"model {name!r} needs a number, not a boolean")
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"model {name!r} needs a finite number")
    return float(value)


def error_value(model: TabularModel, label: LabelRecord) -> float:
    """What the concept-drift detector sees: 1/0 for a wrong/right class, the residual for price."""
    if model.is_classifier:
        return float(label.prediction != label.actual)
    return label.actual - label.prediction


def new_detector(model: TabularModel) -> ConceptDriftDetector | None:
    """A detector whose in-control baseline is the model's own holdout figure; None when the
    model has no holdout figure (registered without labels): no baseline, no concept verdict."""
    holdout = model.metadata.holdout_metrics if model.metadata else {}
    if model.is_classifier:
        if "accuracy" not in holdout:
            return None
        return detector_for_classifier(1.0 - float(holdout["accuracy"]))
    if "rmse" not in holdout:
        return None
    return detector_for_regressor(float(holdout["rmse"]))


def _finite(d: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if v is not None and math.isfinite(v)}


def realized_metrics(model: TabularModel, labels: Sequence[LabelRecord]) -> dict[str, float]:
    """Realized figures over labelled predictions (the stored output, not a re-prediction)."""
    y = np.array([lab.actual for lab in labels], dtype=np.float64)
    pred = np.array([lab.prediction for lab in labels], dtype=np.float64)
    if not model.is_classifier:
        return _finite(regression_metrics(y, pred)) if len(y) >= 2 else {}
    yi, pi = y.astype(int), pred.astype(int)
    if model.is_multiclass:
        k = len(model.classes)
        if all(lab.scores is not None and len(lab.scores) == k for lab in labels):
            scores = np.array([lab.scores for lab in labels], dtype=np.float64)
        else:  # scores of another version: the stored predictions as one-hot scores
            scores = np.eye(k)[np.clip(pi, 0, k - 1)]
            return _finite({m: v for m, v in multiclass_metrics(yi, scores).items()
                            if m != "log_loss"})  # fmt: skip
        return _finite(multiclass_metrics(yi, scores))
    out = {
        "accuracy": skm.accuracy_score(yi, pi),
        "precision": skm.precision_score(yi, pi, zero_division=0),
        "recall": skm.recall_score(yi, pi, zero_division=0),
        "f1": skm.f1_score(yi, pi, zero_division=0),
        "positive_rate": float(np.mean(yi)),
    }
    proba = np.array([lab.probability if lab.probability is not None else np.nan for lab in labels])
    if not np.isnan(proba).any():
        out["log_loss"] = skm.log_loss(yi, np.clip(proba, 1e-12, 1 - 1e-12), labels=[0, 1])
        if len(np.unique(yi)) == 2:  # ROC AUC needs both classes
            out["roc_auc"] = skm.roc_auc_score(yi, proba)
    return _finite(out)


def estimated_metrics(model: TabularModel, probabilities: Sequence[float]) -> dict[str, float]:
    """The label-free (confidence-based) estimate of a binary classifier; empty for the others."""
    if model.task != "binary_classification" or not len(probabilities):
        return {}
    est = model.estimate_performance(np.asarray(probabilities, dtype=np.float64))
    return _finite({k: v for k, v in est.items() if k in ESTIMATED_METRICS})


class PerformanceListener(Protocol):
    """Receives performance verdicts (the alert manager implements this)."""

    def on_performance(
        self, model_name: str, realized: Mapping[str, float], holdout: Mapping[str, float]
    ) -> None: ...

    def on_concept_drift(
        self, model_name: str, firing: bool, statistic: float, threshold: float, n: int
    ) -> None: ...


@dataclass(frozen=True)
class PerformanceConfig:
    window_size: int = 1_000  # labels per performance window
    min_labels: int = 100  # labels before realized figures are given
    estimate_window: int = 1_000  # latest predictions the label-free estimate covers
    batch: int = 5_000  # labels consumed per model per transaction
    max_batches: int = 10  # transactions per model per pass

    def __post_init__(self) -> None:
        for name in ("window_size", "min_labels", "estimate_window", "batch", "max_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class PerformanceMonitor:
    store: LabelStore
    metrics: Metrics
    clock: Callable[[], datetime]
    models: Callable[[], Mapping[str, TabularModel]]
    config: PerformanceConfig = field(default_factory=PerformanceConfig)
    listeners: list[PerformanceListener] = field(default_factory=list)

    # ------------------------------------------------------------------ labels in

    def record(self, items: Sequence[tuple[PredictionRecord, float]]) -> list[str]:
        """Store a label per (prediction, actual); outcome ``recorded`` or ``duplicate`` each.
        Raises LabelConflict (nothing stored) when one contradicts a stored label."""
        labels = self.labels_for(items)
        outcomes = self.store.add(labels)
        for lab, outcome in zip(labels, outcomes, strict=True):
            if outcome == "recorded":
                self.metrics.labeled_predictions.labels(lab.model_name).inc()
        return outcomes

    def labels_for(self, items: Sequence[tuple[PredictionRecord, float]]) -> list[LabelRecord]:
        """Label records for (prediction, actual) pairs, received now."""
        now = self.clock()
        return [
            LabelRecord(
                prediction_id=rec.id,
                model_name=rec.model_name,
                model_version=rec.model_version,
                predicted_at=rec.created_at,
                received_at=now,
                actual=float(actual),
                prediction=rec.prediction,
                probability=rec.probability,
                scores=rec.scores,
            )
            for rec, actual in items
        ]

    # ------------------------------------------------------------------ background work

    def process(self, full: bool = False) -> None:
        """Consume new labels of every loaded model, then evaluate the windows they completed.
        ``full`` also evaluates windows another process left unevaluated (it stopped between
        consuming and evaluating) and refreshes the gauges (after a restart)."""
        for model in list(self.models().values()):
            consumed = 0
            for _ in range(self.config.max_batches):  # a backlog drains over a few passes
                n = self._consume(model)
                consumed += n
                if n < self.config.batch:
                    break
            if consumed or full:
                self._evaluate_completed(model)
                self.refresh(model)

    def _consume(self, model: TabularModel) -> int:
        name = model.name
        for _ in range(5):  # another process may advance the tracker first: read again
            rows = self.store.unprocessed(name, self.config.batch)
            if not rows:
                return 0
            previous = self.store.tracker(name)
            state, fired, windows = self._advance(model, previous, rows)
            if not self.store.advance(previous, state, windows):
                continue
            if state.detector:
                statistic = detector_from_state(state.detector).statistic
                self.metrics.concept_drift_statistic.labels(name).set(statistic)
            for statistic, threshold, n in fired:
                self.metrics.concept_drift_detected.labels(name).set(1)
                for listener in self.listeners:
                    listener.on_concept_drift(name, True, statistic, threshold, n)
            return len(rows)
        return 0

    def _advance(
        self,
        model: TabularModel,
        previous: TrackerState | None,
        rows: Sequence[tuple[int, LabelRecord]],
    ) -> tuple[TrackerState, list[tuple[float, float, int]], dict[int, list[int]]]:
        if previous is None:
            detector, seq, count, evaluated, total, alarms = new_detector(model), 0, 0, -1, 0, {}
        else:
            seq, count = previous.window_seq, previous.window_count
            evaluated, total = previous.evaluated_through, previous.labels_total
            alarms = dict(previous.alarms)
            if previous.model_version != model.version:
                # A new model version: a new baseline, and a new window for its labels.
                detector = new_detector(model)
                if count:
                    seq, count = seq + 1, 0
            else:
                detector = detector_from_state(previous.detector) if previous.detector else None
        fired: list[tuple[float, float, int]] = []
        windows: dict[int, list[int]] = {}
        for row_id, label in rows:
            if detector is not None and detector.update(error_value(model, label)):
                fired.append((detector.statistic, detector.threshold, detector.n))
                alarms[str(seq)] = alarms.get(str(seq), 0) + 1
                detector.reset()  # watch on: a later shift raises again (the alert repeats)
            windows.setdefault(seq, []).append(row_id)
            count += 1
            if count >= self.config.window_size:
                seq, count = seq + 1, 0
        state = TrackerState(
            model_name=model.name,
            model_version=model.version,
            revision=(previous.revision + 1) if previous else 0,
            detector=detector.to_state() if detector is not None else {},
            window_seq=seq,
            window_count=count,
            evaluated_through=evaluated,
            labels_total=total + len(rows),
            alarms={k: v for k, v in alarms.items() if int(k) > evaluated},
            updated_at=self.clock(),
        )
        return state, fired, windows

    def _evaluate_completed(self, model: TabularModel) -> None:
        tracker = self.store.tracker(model.name)
        if tracker is None:
            return
        holdout = dict(model.metadata.holdout_metrics) if model.metadata else {}
        for seq in range(tracker.evaluated_through + 1, tracker.window_seq):
            labels = self.store.window_labels(model.name, seq)
            enough = len(labels) >= self.config.min_labels
            realized = realized_metrics(model, labels) if enough else None
            estimated = (
                estimated_metrics(model, [lab.probability or 0.0 for lab in labels])
                if enough
                else None
            )
            alarms = int(tracker.alarms.get(str(seq), 0))
            result = PerformanceResult(
                model_name=model.name,
                model_version=labels[-1].model_version if labels else model.version,
                kind="labelled",
                window_seq=seq,
                created_at=self.clock(),
                n_rows=len(labels),
                realized=realized,
                estimated=estimated or None,
                concept={"alarms": alarms},
            )
            if not self.store.save_window(result):
                return  # another process evaluated it (and the ones after it)
            log.info(
                "%s: performance window %d evaluated (%d labels)", model.name, seq, len(labels)
            )
            for listener in self.listeners:
                if realized:
                    listener.on_performance(model.name, realized, holdout)
                if not alarms:
                    listener.on_concept_drift(model.name, False, 0.0, 0.0, len(labels))
            if not alarms:
                self.metrics.concept_drift_detected.labels(model.name).set(0)

    def refresh(self, model: TabularModel) -> dict[str, Any] | None:
        """Realized figures (and the estimate over the same predictions) over the latest
        ``window_size`` labels; sets the gauges. None below ``min_labels``."""
        labels = self.store.latest_labels(model.name, self.config.window_size)
        if len(labels) < self.config.min_labels:
            return None
        realized = realized_metrics(model, labels)
        estimated = estimated_metrics(model, [lab.probability or 0.0 for lab in labels])
        name = model.name
        for metric, value in realized.items():
            self.metrics.model_performance.labels(name, metric).set(value)
        gap = {m: estimated[m] - realized[m] for m in estimated if m in realized}
        for metric, value in gap.items():
            self.metrics.performance_estimate_gap.labels(name, metric).set(value)
        return {
            "n_labels": len(labels),
            "first_predicted_at": labels[0].predicted_at,
            "last_received_at": max(lab.received_at for lab in labels),
            "metrics": realized,
            "estimated_on_labelled": estimated,
            "estimate_gap": gap,
        }

    def estimate(self, model: TabularModel) -> dict[str, Any] | None:
        """The label-free estimate over the latest logged predictions of the model's version;
        sets the gauges and records it once per ``estimate_window`` predictions (binary
        classifiers: the estimate needs one calibrated probability per prediction)."""
        if model.task != "binary_classification":
            return None
        probs = self.store.recent_probabilities(
            model.name, model.version, self.config.estimate_window
        )
        if len(probs) < self.config.min_labels:
            return None
        est = estimated_metrics(model, probs)
        for metric, value in est.items():
            self.metrics.estimated_performance.labels(model.name, metric).set(value)
        return {"n_predictions": len(probs), "metrics": est}

    def estimate_all(self) -> None:
        """``estimate`` for every loaded classifier, recording one estimate per full window."""
        for model in list(self.models().values()):
            out = self.estimate(model)
            if out is None:
                continue
            total = self.store.count_predictions(model.name, model.version)
            seq = total // self.config.estimate_window
            if seq >= 1 and out["n_predictions"] >= self.config.estimate_window:
                self.store.save_estimate(
                    PerformanceResult(
                        model_name=model.name,
                        model_version=model.version,
                        kind="estimated",
                        window_seq=seq,
                        created_at=self.clock(),
                        n_rows=out["n_predictions"],
                        realized=None,
                        estimated=out["metrics"],
                    )
                )

    # ------------------------------------------------------------------ reading

    def summary(self, model: TabularModel, history: int = 20) -> dict[str, Any]:
        """Everything ``GET /monitoring/performance/{model}`` shows."""
        holdout = dict(model.metadata.holdout_metrics) if model.metadata else {}
        tracker = self.store.tracker(model.name)
        concept = None
        if tracker is not None and tracker.detector:
            detector = detector_from_state(tracker.detector)
            concept = {
                "detector": detector.kind,
                "statistic": detector.statistic,
                "threshold": detector.threshold,
                "labels_seen": detector.n,
                "alarms_in_open_windows": sum(int(v) for v in tracker.alarms.values()),
            }
        return {
            "model_name": model.name,
            "model_version": model.version,
            "task": model.task,
            "holdout": _finite(holdout),
            "realized": self.refresh(model),
            "estimated": self.estimate(model),
            "labels": {
                "total": tracker.labels_total if tracker else 0,
                "window_size": self.config.window_size,
                "min_labels": self.config.min_labels,
                "in_open_window": tracker.window_count if tracker else 0,
                "windows_evaluated": (tracker.evaluated_through + 1) if tracker else 0,
            },
            "concept_drift": concept,
            "history": self.store.history(model.name, "labelled", history),
            "estimate_history": self.store.history(model.name, "estimated", history),
            "backfill_history": self.store.history(model.name, "backfill", history),
        }
