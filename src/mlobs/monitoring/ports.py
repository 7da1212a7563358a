"""What monitoring needs from the layers that store things, as Protocols that storage implements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from mlobs.monitoring.records import (
    DriftResult,
    LabelRecord,
    PerformanceResult,
    PredictionRecord,
    TrackerState,
    WindowInfo,
)

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

    def get(self, prediction_id: str, model_name: str | None = None) -> PredictionRecord | None:
        """A submitted record, whether still queued or already stored (of ``model_name`` when
        given; ``AmbiguousId`` when several models have the id and none is given)."""
        ...

    def get_many(
        self, prediction_ids: Sequence[str], *, features: bool = True
    ) -> dict[str, list[PredictionRecord]]:
        """The submitted records among the ids, by id, one per model that has it (queued or
        stored); without ``features`` stored ones may come back with an empty feature mapping."""
        ...


class PredictionStore(Protocol):
    """Durable prediction log."""

    def insert_many(self, records: Sequence[PredictionRecord]) -> None: ...

    def get(self, prediction_id: str, model_name: str | None = None) -> PredictionRecord | None: ...

    def get_many(
        self, prediction_ids: Sequence[str], *, features: bool = True
    ) -> dict[str, list[PredictionRecord]]: ...


class WindowStore(Protocol):
    """Live windows shared by every process through the database."""

    def add_counts(
        self,
        model_name: str,
        profile_version: str,
        delta: WindowCounts,
        now: datetime,
        *,
        known: WindowInfo | None = None,
    ) -> WindowInfo | None:
        """Add a process's counts to the model's open window (opening one if there is none) and
        return it; None when the open window was counted on another reference profile.
        ``known``: the open window as the caller just read it (saves reading it again; a window
        closed meanwhile is detected and the next one read)."""
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

    def history(
        self, model_name: str, dataset_name: str | Sequence[str], limit: int
    ) -> list[DriftResult]: ...


class DriftListener(Protocol):
    """Receives every drift and quality verdict (the alert manager implements this)."""

    def on_drift(self, model_name: str, dataset_name: str, report: DriftReport) -> None: ...

    def on_quality(self, model_name: str, dataset_name: str, report: QualityReport) -> None: ...


class LabelStore(Protocol):
    """Ground-truth labels, the per-model label trackers and performance results."""

    def add(self, labels: Sequence[LabelRecord]) -> list[str]:
        """Store labels in one transaction: ``recorded`` for each new one, ``duplicate`` for one
        repeating a stored label with the same value. A stored label with another value raises
        ``LabelConflict`` and nothing is stored."""
        ...

    def get(self, prediction_id: str, model_name: str | None = None) -> LabelRecord | None: ...

    def tracker(self, model_name: str) -> TrackerState | None: ...

    def unprocessed(self, model_name: str, limit: int) -> list[tuple[int, LabelRecord]]:
        """Labels the tracker has not consumed yet, oldest first, with their row ids."""
        ...

    def advance(
        self, previous: TrackerState | None, new: TrackerState, windows: dict[int, list[int]]
    ) -> bool:
        """Store the tracker's new state and mark the labels (row ids by window) consumed, in one
        transaction guarded by ``previous.revision``; False when another process got there first."""
        ...

    def window_labels(self, model_name: str, window_seq: int) -> list[LabelRecord]: ...

    def latest_labels(self, model_name: str, n: int) -> list[LabelRecord]: ...

    def save_window(self, result: PerformanceResult) -> bool:
        """Store a completed window's figures and move the tracker's ``evaluated_through`` to it;
        False when it was evaluated already."""
        ...

    def save_estimate(self, result: PerformanceResult) -> bool:
        """Store a label-free estimate; False when that window of predictions has one."""
        ...

    def history(self, model_name: str, kind: str, limit: int) -> list[PerformanceResult]: ...

    def recent_probabilities(self, model_name: str, model_version: str, n: int) -> list[float]:
        """Positive-class probabilities of the latest logged predictions of one model version."""
        ...

    def count_predictions(self, model_name: str, model_version: str) -> int: ...
