"""What one app instance runs on, built by ``create_app`` and torn down by its lifespan."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from mlobs.config import Settings
from mlobs.models.registry import ModelRegistry
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.service import PredictionService
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.prediction_log import PredictionLog
from mlobs.storage.repositories import PredictionRepository

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    registry: CollectorRegistry
    metrics: Metrics
    engine: Engine
    predictions: PredictionRepository
    prediction_log: PredictionLog
    service: PredictionService
    models_ready: threading.Event = field(default_factory=threading.Event)
    startup_errors: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings, registry: CollectorRegistry) -> Runtime:
        metrics = Metrics(registry)
        engine = make_engine(settings.resolved_database_url)
        repo = PredictionRepository(engine)
        plog = PredictionLog(
            repo,
            metrics,
            queue_size=settings.log_queue_size,
            batch_size=settings.log_batch_size,
            flush_interval=settings.log_flush_interval,
        )
        service = PredictionService(ModelRegistry(), metrics, plog)
        return cls(settings, registry, metrics, engine, repo, plog, service)

    @property
    def models(self) -> ModelRegistry:
        return self.service.models

    def start(self) -> None:
        """Migrate the database, start the log writer, and load the models in the background so
        that liveness answers at once and readiness turns 200 when the models are in."""
        try:
            migrate(self.engine)
        except Exception as exc:  # the service still serves predictions without its database
            msg = f"database migration failed: {type(exc).__name__}: {exc}"
            log.error(msg)
            self.startup_errors.append(msg)
        self.prediction_log.start()
        threading.Thread(target=self._load_models, name="model-loader", daemon=True).start()

    def _load_models(self) -> None:
        try:
            loaded = ModelRegistry.load(Path(self.settings.model_dir))
            for model in loaded:
                self.metrics.model_loaded.labels(model.name, model.version).set(1)
            for name, reason in loaded.errors.items():
                log.warning("model %s not loaded: %s", name, reason)
            self.service.models = loaded
            log.info("models loaded: %s", ", ".join(loaded.models) or "none")
        finally:
            self.models_ready.set()

    def stop(self) -> None:
        lost = self.prediction_log.stop()
        if lost:
            log.error("%d logged predictions could not be written at shutdown", lost)
        self.engine.dispose()
