"""The prediction service: model output, metrics and logging for every request, in one place."""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from prometheus_client import Counter, Histogram

from mlobs.errors import ModelNotLoaded, NotFound
from mlobs.models.registry import ModelRegistry
from mlobs.monitoring.drift_monitor import DriftMonitor
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.ports import PredictionSink
from mlobs.monitoring.records import PredictionRecord


@dataclass(frozen=True)
class _ModelMetrics:
    success: Counter
    latency: Histogram
    value: Histogram
    recent: deque[float]  # the last single-row latencies, for the high_latency rule


def _replaced(model_name: str, missing: KeyError) -> ModelNotLoaded:
    """A record validated against a model version that was replaced, with other features, before
    it was predicted: a 503 the client can retry, not a 500."""
    return ModelNotLoaded(
        model_name, f"replaced by a version without the feature {missing}; send the request again"
    )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class PredictionService:
    """Serves predictions from a model registry, counts them and hands them to the log.

    Records reaching this service are validated already (the API's schemas); the model layer
    encodes missing values and unseen categories.
    """

    def __init__(
        self,
        models: ModelRegistry,
        metrics: Metrics,
        sink: PredictionSink,
        *,
        clock: Callable[[], datetime] = utcnow,
        drift: DriftMonitor | None = None,
        latency_window: int = 1_000,
    ) -> None:
        self.models, self.metrics, self.sink, self.clock = models, metrics, sink, clock
        self.drift = drift
        self._children: dict[str, _ModelMetrics] = {}
        self.latency_window = latency_window

    def _metrics_of(self, model_name: str) -> _ModelMetrics:
        # Resolving labelled children costs microseconds per call; the label sets are fixed.
        children = self._children.get(model_name)
        if children is None:
            m = self.metrics
            children = _ModelMetrics(
                success=m.predictions.labels(model_name, "success"),
                latency=m.latency.labels(model_name),
                value=m.value.labels(model_name),
                recent=deque(maxlen=self.latency_window),
            )
            self._children[model_name] = children
        return children

    def predict(self, model_name: str, record: Mapping[str, Any]) -> PredictionRecord:
        model = self.models.get(model_name)
        t = time.perf_counter()
        try:
            out = model.predict_record(record)
        except KeyError as exc:
            self.metrics.predictions.labels(model_name, "error").inc()
            raise _replaced(model_name, exc) from None
        except Exception:
            self.metrics.predictions.labels(model_name, "error").inc()
            raise
        elapsed = time.perf_counter() - t
        children = self._metrics_of(model_name)
        children.latency.observe(elapsed)
        children.recent.append(elapsed)
        children.success.inc()
        output = out.monitored
        children.value.observe(output)
        if self.drift is not None:
            self.drift.observe(model_name, record, output)
        rec = PredictionRecord(
            id=str(uuid.uuid4()),
            model_name=model_name,
            model_version=model.version,
            created_at=self.clock(),
            features=record,
            prediction=out.value,
            probability=out.probability,
            latency_ms=elapsed * 1e3,
            scores=out.scores,
            label=model.classes[int(out.value)] if out.scores is not None else None,
        )
        self.sink.submit(rec)
        return rec

    def predict_batch(
        self, model_name: str, records: Sequence[Mapping[str, Any]]
    ) -> list[PredictionRecord]:
        """Predict many records with one estimator call; each is logged as its own prediction."""
        model = self.models.get(model_name)
        t = time.perf_counter()
        try:
            out = model.predict_records(records)
        except KeyError as exc:
            self.metrics.predictions.labels(model_name, "error").inc(len(records))
            raise _replaced(model_name, exc) from None
        except Exception:
            self.metrics.predictions.labels(model_name, "error").inc(len(records))
            raise
        elapsed = time.perf_counter() - t
        per_row_ms = elapsed * 1e3 / max(len(records), 1)
        self.metrics.batch_latency.labels(model_name).observe(elapsed)
        self.metrics.batch_size.labels(model_name).observe(len(records))
        self.metrics.predictions.labels(model_name, "success").inc(len(records))
        now, version = self.clock(), model.version
        values = out.values.tolist()
        probas = out.probabilities.tolist() if out.probabilities is not None else None
        scores = out.scores.tolist() if out.scores is not None else None
        classes = model.classes
        observe = self.metrics.value.labels(model_name).observe
        result = []
        for i, features in enumerate(records):
            proba = probas[i] if probas is not None else None
            observe(proba if proba is not None else values[i])
            rec = PredictionRecord(
                id=str(uuid.uuid4()),
                model_name=model_name,
                model_version=version,
                created_at=now,
                features=features,
                prediction=values[i],
                probability=proba,
                latency_ms=per_row_ms,
                scores=scores[i] if scores is not None else None,
                label=classes[int(values[i])] if scores is not None else None,
            )
            self.sink.submit(rec)
            result.append(rec)
        if self.drift is not None:
            self.drift.observe_many(model_name, records, probas if probas is not None else values)
        return result

    def latency_p99(self, min_count: int = 100) -> dict[str, float]:
        """p99 of each model's recent single-row latencies (models with enough of them)."""
        out = {}
        for name, children in list(self._children.items()):
            recent = sorted(children.recent)
            if len(recent) >= min_count:
                out[name] = recent[min(len(recent) - 1, int(0.99 * len(recent)))]
        return out

    def get_prediction(self, prediction_id: str, model_name: str | None = None) -> PredictionRecord:
        rec = self.sink.get(prediction_id, model_name)
        if rec is None:
            raise NotFound("prediction", prediction_id)
        return rec
