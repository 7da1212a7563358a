"""The application factory. Settings, the engine and the metrics registry are built here and
nowhere else, so tests create as many independent apps as they like."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from mlobs import __version__
from mlobs.api import errors
from mlobs.api.routes import alerts, feedback, health, monitoring, predictions, silences
from mlobs.api.runtime import Runtime
from mlobs.config import Settings, configure_logging

DESCRIPTION = """
Serves the fraud, price and churn models, logs every prediction, and exports Prometheus metrics.

Every error body has one shape: `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`,
where `loc` names the field (and the record index, in a batch).
"""


def create_app(
    settings: Settings | None = None, *, registry: CollectorRegistry | None = None
) -> FastAPI:
    """Build the service. With no arguments, settings come from the environment."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    runtime = Runtime.build(settings, registry or CollectorRegistry())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(
        title="mlobs",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "health", "description": "Liveness, readiness and model status."},
            {"name": "predictions", "description": "Predictions and the prediction log."},
            {"name": "monitoring", "description": "Drift, data quality, reference, metrics."},
            {"name": "feedback", "description": "Late ground-truth labels."},
            {"name": "alerts", "description": "Alerts and their lifecycle."},
        ],
    )
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(health.router)
    app.include_router(predictions.build_router(settings.max_batch_records))
    app.include_router(monitoring.router)
    app.include_router(feedback.build_router(settings.max_batch_records))
    app.include_router(alerts.router)
    app.include_router(silences.router)
    return app
