"""Domain records that monitoring produces and storage keeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PredictionRecord:
    """One served prediction, as logged.

    ``features`` holds the request's values (None for missing); ``prediction`` is the class (0/1
    for a binary classifier, the class's index for a multiclass one) or the value;
    ``probability`` the positive class's probability (binary) or the predicted class's
    (multiclass). A multiclass prediction also has ``scores``, every class's probability in the
    manifest's class order, and ``label``, the predicted class's label.
    """

    id: str
    model_name: str
    model_version: str
    created_at: datetime
    features: Mapping[str, Any]
    prediction: float
    probability: float | None
    latency_ms: float
    scores: Sequence[float] | None = None
    label: str | int | None = None


@dataclass(frozen=True)
class WindowInfo:
    """A live window as the database has it."""

    id: int
    model_name: str
    seq: int
    profile_version: str
    status: str
    opened_at: datetime
    n_rows: int
    closed_at: datetime | None = None


@dataclass(frozen=True)
class DriftResult:
    """A stored drift verdict: a closed live window (``live``), posted rows (``request``) or a
    period of a backfilled prediction log (``backfill``, with the period in event time)."""

    model_name: str
    dataset_name: str
    window_id: int | None
    created_at: datetime
    n_rows: int
    status: str
    dataset_drift: bool
    drift_share: float
    drifted_features_count: int
    report: Mapping[str, Any]
    quality: Mapping[str, Any] | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class LabelRecord:
    """A ground-truth label joined to the prediction it answers (a copy of that prediction's
    version, output and time, so that a label may arrive while the prediction is still queued)."""

    prediction_id: str
    model_name: str
    model_version: str
    predicted_at: datetime
    received_at: datetime
    actual: float
    prediction: float
    probability: float | None
    scores: Sequence[float] | None = None


@dataclass(frozen=True)
class TrackerState:
    """Where a model's stream of labels stands: the concept-drift detector's state, the open
    performance window (``window_seq``, ``window_count`` labels in it), the last window whose
    figures were stored, and detector alarms per window not yet evaluated."""

    model_name: str
    model_version: str
    revision: int
    detector: Mapping[str, Any]
    window_seq: int
    window_count: int
    evaluated_through: int
    labels_total: int
    alarms: Mapping[str, int]
    updated_at: datetime


@dataclass(frozen=True)
class PerformanceResult:
    """Stored figures: a completed window of labels (``labelled``: realized, and the estimate over
    the same predictions) or the label-free estimate over recent predictions (``estimated``)."""

    model_name: str
    model_version: str
    kind: str
    window_seq: int
    created_at: datetime
    n_rows: int
    realized: Mapping[str, float] | None
    estimated: Mapping[str, float] | None
    concept: Mapping[str, Any] | None = None
