"""The service plus echo routes, for the HTTP benchmark only (not part of the product).

``POST /echo/{model}`` validates the same request schema as ``/predict/{model}`` and returns a
response of the same shape, without predicting, logging or monitoring: the floor that the
framework, validation and serialisation set.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated

from fastapi import Body, FastAPI
from pydantic import BaseModel

from mlobs.api.app import create_app
from mlobs.api.schemas import PredictionOut


def _echo(name: str, body_model: type[BaseModel]):  # type: ignore[no-untyped-def]
    async def echo(body: BaseModel) -> PredictionOut:
        body.model_dump()  # the service does this too, to hand the record to the model
        return PredictionOut(
            prediction_id=str(uuid.uuid4()),
            model_name=name,
            model_version="echo",
            prediction=0,
            probability=0.5,
            timestamp=datetime.now(timezone.utc),
        )

    echo.__annotations__["body"] = Annotated[body_model, Body()]
    echo.__name__ = f"echo_{name}"
    return echo


def create() -> FastAPI:
    app = create_app()
    for name, model in app.state.runtime.bodies.features.items():
        app.add_api_route(
            f"/echo/{name}", _echo(name, model), methods=["POST"], response_model=PredictionOut
        )
    return app
