"""What monitoring needs from the layers that store things, as Protocols that storage implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mlobs.monitoring.records import PredictionRecord


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
