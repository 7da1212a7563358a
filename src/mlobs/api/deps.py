"""Dependencies for routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mlobs.api.runtime import Runtime
from mlobs.monitoring.service import PredictionService


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_service(request: Request) -> PredictionService:
    runtime: Runtime = request.app.state.runtime
    return runtime.service


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ServiceDep = Annotated[PredictionService, Depends(get_service)]
