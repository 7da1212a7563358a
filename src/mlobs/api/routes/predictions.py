"""Prediction routes: one per model, a batch route, the model list and the prediction log.

No ``from __future__ import annotations`` here: the per-model routes are built in a loop and
FastAPI must see their body types as real objects, not strings.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel

from mlobs.api.auth import Guard, KeyPolicy
from mlobs.api.bodies import ModelBodies
from mlobs.api.deps import ModelOfId, PredictionIdPath, RuntimeDep, ServiceDep
from mlobs.api.errors import BODY, responses
from mlobs.api.routes.models import model_out
from mlobs.api.schemas import (
    BatchOut,
    BatchRequestBase,
    LoggedPredictionOut,
    ModelsOut,
    PredictionOut,
    batch_request_model,
)
from mlobs.monitoring.service import PredictionService


def _single_route(
    name: str, body_model: type[BaseModel], description: str
) -> Callable[..., Coroutine[Any, Any, PredictionOut]]:
    async def predict(body: BaseModel, request: Request) -> PredictionOut:
        # The service comes straight from app state, not through Depends: on the hottest route a
        # dependency costs more than the model's preprocessing.
        service: PredictionService = request.app.state.runtime.service
        return PredictionOut.from_record(service.predict(name, body.model_dump(by_alias=True)))

    # The body type is only known here; FastAPI reads it from the annotations.
    predict.__annotations__["body"] = Annotated[body_model, Body()]
    predict.__name__ = f"predict_{name}"
    predict.__doc__ = f"Predict with the {name} model. {description}".strip()
    return predict


def build_router(policy: KeyPolicy, max_batch_records: int, bodies: ModelBodies) -> APIRouter:
    """The prediction routes. Where the policy enforces the ``predict`` scope (API keys set and
    PREDICT_REQUIRES_KEY) the predict routes need it; otherwise they carry no dependency at all."""
    router = APIRouter(tags=["predictions"])
    predict = Guard.of(policy, "predict")
    # 503: the model is not loaded.
    guard: dict[str, Any] = {
        "dependencies": list(predict.dependencies),
        "responses": responses(*BODY, 503, *predict.statuses),
    }
    for name, body_model in bodies.features.items():
        router.add_api_route(
            f"/predict/{name}",
            _single_route(name, body_model, bodies.schemas[name].description),
            methods=["POST"],
            response_model=PredictionOut,
            summary=f"Predict {name}",
            **guard,
        )

    def predict_batch(body: BatchRequestBase, service: ServiceDep) -> BatchOut:
        """Predict many records of one model; any invalid record rejects the batch with a 422."""
        records = bodies.validate(body.model_name, body.records)
        out = service.predict_batch(body.model_name, records)
        return BatchOut(
            model_name=body.model_name,
            model_version=out[0].model_version,
            count=len(out),
            predictions=[PredictionOut.from_record(r) for r in out],
        )

    # The request model carries the configured record limit, so it is built per app.
    predict_batch.__annotations__["body"] = batch_request_model(max_batch_records, bodies.features)
    router.add_api_route(
        "/predict/batch",
        predict_batch,
        methods=["POST"],
        response_model=BatchOut,
        **guard,
    )

    @router.get("/predict/models", response_model=ModelsOut)
    def list_models(rt: RuntimeDep) -> ModelsOut:
        """The models, with version, holdout metrics and feature schema, or why one is not loaded
        (the same as ``GET /models``)."""
        return ModelsOut(models=[model_out(rt, n) for n in rt.models.names])

    @router.get(
        "/predictions/{prediction_id}",
        response_model=LoggedPredictionOut,
        responses=responses(404, 409, 422, 503),
    )
    def get_prediction(
        prediction_id: PredictionIdPath, service: ServiceDep, model: ModelOfId = None
    ) -> LoggedPredictionOut:
        """A logged prediction (served, or ingested under its sender's id), also while it still
        waits in the log queue."""
        return LoggedPredictionOut.from_logged(service.get_prediction(prediction_id, model))

    return router
