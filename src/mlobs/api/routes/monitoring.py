"""Monitoring: drift and data-quality checks, live-window status and history, the reference
profile, and the Prometheus exposition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Path, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from mlobs.api.auth import Guard, KeyPolicy
from mlobs.api.bodies import ModelBodies
from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import BODY, responses
from mlobs.api.runtime import Runtime
from mlobs.api.schemas import (
    DriftCheckOut,
    DriftHistoryOut,
    DriftStatusOut,
    QualityReportOut,
    RecordsCheckIn,
    ReferenceOut,
    records_check_model,
    reference_model,
)
from mlobs.errors import InvalidInput, NotFound
from mlobs.monitoring.metrics import scrape_registry
from mlobs.monitoring.profiles import profile_for_model, save_profile

# A free string (an unknown model is a 404); the example lets the docs, and the fuzz tests' examples
# phase, reach a real model.
ModelPath = Annotated[str, Path(description="A model of the catalogue.", examples=["fraud"])]


def _frame(rt: Runtime, model_name: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    """Validate records against the model's schema (422 naming the record) and frame them."""
    rows = rt.bodies.validate(model_name, records)
    return pd.DataFrame(rows, columns=rt.bodies.schema(model_name).feature_names)


def _known(rt: Runtime, model: str) -> str:
    if model not in rt.models:
        raise NotFound("model", model)
    return model


def build_router(policy: KeyPolicy, max_records: int, bodies: ModelBodies) -> APIRouter:
    """The monitoring routes. Posted checks need the ``predict`` scope, reference updates the
    ``admin`` scope, where the policy enforces them; request bodies carry ``max_records``."""
    router = APIRouter(tags=["monitoring"])
    predict, admin = Guard.of(policy, "predict"), Guard.of(policy, "admin")
    check_body = records_check_model(max_records, bodies.features)

    def drift_check(body: RecordsCheckIn, rt: RuntimeDep) -> DriftCheckOut:
        """Drift and quality of posted records, or of the model's live window when none are
        posted."""
        if body.records is None:
            report, quality, window = rt.drift.check_live(body.model_name)
            return DriftCheckOut.model_validate(
                {
                    "dataset_name": "live",
                    "window_id": window.id,
                    "drift": report.to_dict(),
                    "quality": quality.to_dict(),
                }  # fmt: skip
            )
        frame = _frame(rt, body.model_name, body.records)
        rt.drift.profile(body.model_name)  # 404 before predicting when there is no reference
        preds = None  # a monitor-only model: its inputs only
        if body.model_name not in rt.models.monitor_only:
            out = rt.models.get(body.model_name).predict_frame(frame)
            preds = out.monitored
        report, quality = rt.drift.check(body.model_name, frame, preds)
        return DriftCheckOut.model_validate(
            {"dataset_name": "request", "drift": report.to_dict(), "quality": quality.to_dict()}
        )

    def quality_check(body: RecordsCheckIn, rt: RuntimeDep) -> QualityReportOut:
        """Missing values, duplicate rows, values outside the reference range and unseen
        categories of posted records (or of the live window), each with a status."""
        if body.records is None:
            _, quality, _ = rt.drift.check_live(body.model_name)
            return QualityReportOut.model_validate(quality.to_dict())
        frame = _frame(rt, body.model_name, body.records)
        return QualityReportOut.model_validate(rt.drift.quality(body.model_name, frame).to_dict())

    # The body type carries the configured record limit, so it is set per app.
    for path, endpoint, out in (
        ("/monitoring/drift/check", drift_check, DriftCheckOut),
        ("/monitoring/quality/check", quality_check, QualityReportOut),
    ):
        endpoint.__annotations__["body"] = check_body
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            response_model=out,
            # 404: no reference profile; 409: no live window yet; 503: a model not loaded, or
            # the database away (the live window is read from it).
            responses=responses(*BODY, 404, 409, 503, *predict.statuses),
            dependencies=list(predict.dependencies),
        )

    @router.get(
        "/monitoring/drift/status/{model}",
        response_model=DriftStatusOut,
        responses=responses(404, 503),
    )
    def drift_status(model: ModelPath, rt: RuntimeDep) -> DriftStatusOut:
        """Reference summary, thresholds, live-window fill and the last live result."""
        return DriftStatusOut.model_validate(rt.drift.status(_known(rt, model)))

    @router.get(
        "/monitoring/drift/history/{model}",
        response_model=DriftHistoryOut,
        responses=responses(404, 422, 503),
    )
    def drift_history(
        model: ModelPath,
        rt: RuntimeDep,
        limit: Annotated[
            int, Query(ge=1, le=1000, description="Most recent results to return.")
        ] = 50,
    ) -> DriftHistoryOut:
        """Results of the model's closed live windows, newest first."""
        return DriftHistoryOut.model_validate(
            {"model_name": model, "results": rt.drift.history(_known(rt, model), limit)}
        )

    for name, features in bodies.features.items():
        router.add_api_route(
            f"/monitoring/reference/{name}",
            _reference_route(name, reference_model(name, max_records, features)),
            methods=["POST"],
            response_model=ReferenceOut,
            summary=f"Replace the {name} reference",
            responses=responses(*BODY, 503, *admin.statuses),
            dependencies=list(admin.dependencies),
        )

    @router.get(
        "/monitoring/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
    )
    def metrics(rt: RuntimeDep) -> Response:
        """Prometheus metrics in the text exposition format."""
        return _exposition(rt)

    @router.get("/metrics", response_class=Response, include_in_schema=False)
    def metrics_alias(rt: RuntimeDep) -> Response:
        return _exposition(rt)

    return router


def _reference_route(name: str, body_model: type[BaseModel]) -> Callable[..., ReferenceOut]:
    def replace_reference(body: BaseModel, rt: RuntimeDep) -> ReferenceOut:
        m = rt.models.get(name)
        rows = [r.model_dump(by_alias=True) for r in body.records]  # type: ignore[attr-defined]
        frame = pd.DataFrame(rows, columns=m.spec.feature_names)
        try:
            profile = profile_for_model(m, frame)
        except ValueError as exc:  # e.g. a column with no values at all cannot be a reference
            raise InvalidInput(("body", "records"), str(exc)) from None
        save_profile(profile, rt.settings.model_dir)
        rt.drift.set_profile(profile)
        return ReferenceOut(
            model_name=name,
            model_version=profile.model_version,
            rows=profile.rows,
            created_at=profile.created_at,
            features={n: f.kind for n, f in profile.features.items()},
        )

    # The body type is only known here; FastAPI reads it from the annotations.
    replace_reference.__annotations__["body"] = body_model
    replace_reference.__name__ = f"replace_{name}_reference"
    replace_reference.__doc__ = (
        f"Replace the {name} model's reference profile with one built from the posted records "
        "(422 when a feature has no values at all)."
    )
    return replace_reference


def _exposition(rt: Runtime) -> Response:
    # With several worker processes the registry merges them all (see ``scrape_registry``).
    body = generate_latest(scrape_registry(rt.registry))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
