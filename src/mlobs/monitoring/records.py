"""Domain records that monitoring produces and storage keeps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PredictionRecord:
    """One served prediction, as logged.

    ``features`` holds the request's values (None for missing); ``prediction`` is the class (0/1)
    or the price; ``probability`` the positive-class probability for classifiers.
    """

    id: str
    model_name: str
    model_version: str
    created_at: datetime
    features: Mapping[str, Any]
    prediction: float
    probability: float | None
    latency_ms: float


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
    """A stored drift verdict: a closed live window (``live``) or posted rows (``request``)."""

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
