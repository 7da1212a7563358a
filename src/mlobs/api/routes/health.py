"""Health: liveness, readiness and a status with each model's version and load state."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mlobs import __version__
from mlobs.api.deps import RuntimeDep
from mlobs.api.runtime import Runtime
from mlobs.api.schemas import HealthOut, ModelHealth, ProbeOut
from mlobs.storage.db import ping

router = APIRouter(tags=["health"])


def _health(rt: Runtime) -> HealthOut:
    reasons: list[str] = []
    models: dict[str, ModelHealth] = {}
    loading = not rt.models_ready.is_set()
    for name in rt.models.names:
        if name in rt.models.models:
            models[name] = ModelHealth(loaded=True, version=rt.models.models[name].version)
        elif name in rt.models.monitor_only:  # watched, never served: nothing is wrong
            models[name] = ModelHealth(loaded=False, version=rt.models.manifests[name].version,
                                       error="monitor-only: no artifact to serve")  # fmt: skip
        else:
            error = rt.models.errors.get(name, "loading" if loading else "not loaded")
            models[name] = ModelHealth(loaded=False, error=error)
            reasons.append(f"model {name}: {error}")
    for name, reason in rt.profile_errors.items():
        reasons.append(f"drift monitoring of {name}: {reason}")
    db_error = ping(rt.engine)
    if db_error:
        reasons.append(f"database unreachable: {db_error}")
    plog = rt.prediction_log
    if plog.spilling and plog.spill is not None:
        reasons.append(
            f"prediction log and labels spilling to {plog.spill.directory} "
            f"({plog.spill.pending_bytes()} bytes), replayed when the database returns"
        )
    elif plog.last_error:
        reasons.append(f"prediction log cannot write: {plog.last_error}")
    reasons.extend(rt.startup_errors)
    if not rt.models.models:
        status = "unhealthy"
    elif reasons:
        status = "degraded"
    else:
        status = "healthy"
    return HealthOut(
        status=status,
        reasons=reasons,
        models=models,
        database="unreachable" if db_error else "ok",
        log_queue_depth=rt.prediction_log.depth,
        version=__version__,
        worker=os.getpid(),
    )


@router.get("/health", response_model=HealthOut)
def health(rt: RuntimeDep) -> HealthOut:
    """Overall status (healthy, degraded with reasons, unhealthy) and each model's state."""
    return _health(rt)


@router.get("/health/live", response_model=ProbeOut)
async def live() -> ProbeOut:
    """Liveness: 200 while the process answers."""
    return ProbeOut(status="alive")


@router.get(
    "/health/ready",
    response_model=ProbeOut,
    responses={503: {"model": ProbeOut, "description": "Not ready: models loading or absent."}},
)
async def ready(rt: RuntimeDep) -> ProbeOut | JSONResponse:
    """Readiness: 200 while predictions can be served (also when degraded), else 503."""
    if not rt.models_ready.is_set():
        body = ProbeOut(status="not_ready", reasons=["models are loading"])
        return JSONResponse(body.model_dump(), status_code=503)
    if not rt.models.models:
        reasons = [f"model {n}: {e}" for n, e in rt.models.errors.items()]
        body = ProbeOut(status="not_ready", reasons=reasons)
        return JSONResponse(body.model_dump(), status_code=503)
    return ProbeOut(status="ready")
