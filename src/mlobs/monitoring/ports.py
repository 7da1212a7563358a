"""What monitoring needs from the layers that store things, as Protocols that storage implements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from mlobs.monitoring.records import DriftResult, PredictionRecord, WindowInfo

if TYPE_CHECKING:
    from mlobs.monitoring.drift_detector import DriftReport
    from mlobs.monitoring.profiles import ReferenceProfile
    from mlobs.monitoring.quality import QualityReport
    from mlobs.monitoring.windows import WindowCounts


class PredictionSink(Protocol):
    """Accepts served predictions for logging, without blocking the request."""

    def submit(self, record: PredictionRecord) -> bool:
        """Queue a record; False when it had to be dropped (queue full)."""
        ...

    def get(self, prediction_id: str) -> PredictionRecord | None:
        """A submitted record, whether still queued or already stored."""
        ...


class PredictionStore(Protocol):
    """Durable prediction log."""

    def insert_many(self, records: Sequence[PredictionRecord]) -> None: ...

    def get(self, prediction_id: str) -> PredictionRecord | None: ...


class WindowStore(Protocol):
    """Live windows shared by every process through the database."""

    def add_counts(
        self, model_name: str, profile_version: str, delta: WindowCounts, now: datetime
    ) -> WindowInfo | None:
        """Add a process's counts to the model's open window (opening one if there is none) and
        return it; None when the open window was counted on another reference profile."""
        ...

    def open_window(self, model_name: str) -> WindowInfo | None: ...

    def close(self, window_id: int, now: datetime) -> bool:
        """Move an open window to 'closing'; True only for the one caller whose update did it:
        that caller evaluates it."""
        ...

    def reclaim_stale(self, model_name: str, before: datetime, now: datetime) -> list[int]:
        """Windows stuck in 'closing' since before ``before``, each claimed by one caller."""
        ...

    def discard(self, window_id: int, now: datetime) -> bool:
        """Close an open window without evaluating it (its reference profile was replaced)."""
        ...

    def read_counts(self, window_id: int, profile: ReferenceProfile) -> WindowCounts: ...

    def save_result(self, result: DriftResult) -> bool:
        """Store a result (a live window's marks it 'closed' in the same transaction); False
        when the window was evaluated already."""
        ...

    def history(self, model_name: str, dataset_name: str, limit: int) -> list[DriftResult]: ...


class DriftListener(Protocol):
    """Receives every drift and quality verdict (the alert manager implements this)."""

    def on_drift(self, model_name: str, dataset_name: str, report: DriftReport) -> None: ...

    def on_quality(self, model_name: str, dataset_name: str, report: QualityReport) -> None: ...
