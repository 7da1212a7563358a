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
