"""The application factory. Settings, the engine and the metrics registry are built here and
nowhere else, so tests create as many independent apps as they like."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from mlobs import __version__
from mlobs.api import errors
from mlobs.api.auth import KeyPolicy, parse_keys
from mlobs.api.limits import BodySizeLimit
from mlobs.api.routes import (
    alerts,
    feedback,
    health,
    ingest,
    kserve,
    models,
    monitoring,
    predictions,
    silences,
    v2,
    web,
)
from mlobs.api.runtime import Runtime
from mlobs.config import Settings, configure_logging

DESCRIPTION = """
Serves the models of its catalogue (`MODEL_DIR`), logs every prediction, watches drift, data
quality and performance, and exports Prometheus metrics. Each model has its own
`POST /predict/<model>` whose body is that model's features.

Every error body has one shape: `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`,
where `loc` names the field (and the record index, in a batch). A body that is not JSON text
(e.g. not UTF-8) is a 400; JSON that does not parse (`json_invalid`) or does not validate is a
422; a body over the server's limit (`MAX_BODY_BYTES`) is a 413.

When the server has API keys (`API_KEYS`), state-changing routes need the header `X-API-Key`
with a scope: `admin` (acknowledge, resolve, silences, reference updates), `feedback` (labels),
`predict` (predictions and posted checks, with `PREDICT_REQUIRES_KEY=true`). Health, metrics,
the docs, the web page and read-only GETs stay open. This document is the running server's:
the routes it shows with a security requirement (and 401, 403) are those its keys guard.
"""


class InsecureConfiguration(RuntimeError):
    """Production without API keys, and without ALLOW_OPEN=true saying so on purpose."""


def _build_routes(routes: list[Any]) -> None:
    """Build every route's request handling here, before the routes are swapped in: FastAPI
    builds an included router's routes at their first match, and a request matching them while
    the catalogue's next routes are being built in another thread met pydantic half-way through
    a schema (a 500 during a hot registration)."""
    scope = {"type": "http", "method": "GET", "path": "/", "root_path": "", "headers": [],
             "query_string": b""}  # fmt: skip
    for route in routes:
        route.matches(scope)


def create_app(
    settings: Settings | None = None, *, registry: CollectorRegistry | None = None
) -> FastAPI:
    """Build the service. With no arguments, settings come from the environment."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, kserve.RedactKeys) for f in access.filters):
        access.addFilter(kserve.RedactKeys())  # the one route that takes a key in its URL
    policy = KeyPolicy(parse_keys(settings.api_keys), settings.predict_requires_key)
    if settings.environment == "production" and not policy.enabled and not settings.allow_open:
        raise InsecureConfiguration(
            "ENVIRONMENT=production needs API_KEYS (e.g. API_KEYS='<key>:admin,<key>:predict+"
            "feedback'); set ALLOW_OPEN=true to run an open API on purpose"
        )
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
            {"name": "models", "description": "The model catalogue: register, list, remove."},
            {"name": "open inference protocol", "description": "KServe / Triton V2 inference."},
        ],
    )
    app.state.runtime = runtime
    app.state.key_policy = policy
    errors.install(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        # Model uploads (an artifact and its reference data) have a limit of their own.
        overrides={("POST", "/models"): settings.max_upload_bytes},
    )
    own_routes = list(app.router.routes)  # the OpenAPI document, /docs and /redoc

    def mount(_: object = None) -> None:
        """The routes for the current catalogue: per-model paths and bodies come from it. A new
        list replaces the old in one assignment, so a request routes on one or the other."""
        router = APIRouter()
        router.include_router(health.router)
        router.include_router(
            predictions.build_router(policy, settings.max_batch_records, runtime.bodies)
        )
        router.include_router(
            monitoring.build_router(policy, settings.max_batch_records, runtime.bodies)
        )
        router.include_router(feedback.build_router(policy, settings.max_batch_records))
        router.include_router(alerts.build_router(policy))
        router.include_router(silences.build_router(policy))
        router.include_router(models.build_router(policy))
        router.include_router(v2.build_router(policy, settings.max_batch_records))
        router.include_router(ingest.build_router(policy))
        router.include_router(kserve.build_router(policy))
        router.include_router(web.router)
        _build_routes(router.routes)
        app.router.routes = [*own_routes, *router.routes]
        app.openapi_schema = None  # rebuilt from these routes at the next /openapi.json

    mount()
    runtime.catalog_listeners.append(mount)
    return app
