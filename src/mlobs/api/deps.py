"""Dependencies for routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from mlobs.api.runtime import Runtime
from mlobs.api.schemas import PREDICTION_ID, PREDICTION_ID_TEXT
from mlobs.monitoring.service import PredictionService


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_service(request: Request) -> PredictionService:
    runtime: Runtime = request.app.state.runtime
    return runtime.service


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ServiceDep = Annotated[PredictionService, Depends(get_service)]
# A prediction id in the path, and the model it belongs to where a sender's id is not unique.
PredictionIdPath = Annotated[str, Path(description=PREDICTION_ID_TEXT, **PREDICTION_ID)]
ModelOfId = Annotated[
    str | None,
    Query(description="The model, where a sender's id is known under several (else 409)."),
]
