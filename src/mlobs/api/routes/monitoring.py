"""Monitoring: drift and data-quality checks, live-window status and history, the reference
profile, and the Prometheus exposition."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mlobs.api.auth import require
from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import responses
from mlobs.api.runtime import Runtime
from mlobs.api.schemas import (
    DriftCheckOut,
    DriftHistoryOut,
    DriftStatusOut,
    QualityReportOut,
    RecordsCheckIn,
    ReferenceIn,
    ReferenceOut,
)
from mlobs.api.validation import validate_records
from mlobs.data.generator import DATASETS
from mlobs.errors import InvalidInput, NotFound
from mlobs.monitoring.metrics import scrape_registry
from mlobs.monitoring.profiles import profile_for_model, save_profile

router = APIRouter(tags=["monitoring"])


def _frame(
    rt: Runtime, model_name: str, records: list[dict[str, Any]], loc: str = "records"
) -> pd.DataFrame:
    """Validate records against the model's schema (422 naming the record) and frame them."""
    if len(records) > rt.settings.max_batch_records:
        raise InvalidInput(
            ("body", loc),
            f"at most {rt.settings.max_batch_records} records per request, got {len(records)}",
            "too_long",
        )
    rows = validate_records(model_name, records, loc)
    return pd.DataFrame(rows, columns=DATASETS[model_name].feature_names)


def _known(model: str) -> str:
    if model not in DATASETS:
        raise NotFound("model", model)
    return model


@router.post(
    "/monitoring/drift/check",
    response_model=DriftCheckOut,
    responses=responses(401, 403, 404, 409, 422),
    dependencies=[Depends(require("predict"))],
)
def drift_check(body: RecordsCheckIn, rt: RuntimeDep) -> DriftCheckOut:
    """Drift and quality of posted records, or of the model's live window when none are posted."""
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
    if not body.records:
        raise InvalidInput(("body", "records"), "at least one record is needed", "too_short")
    frame = _frame(rt, body.model_name, body.records)
    rt.drift.profile(body.model_name)  # 404 before predicting when there is no reference
    model = rt.models.get(body.model_name)
    out = model.predict_frame(frame)
    preds = out.probabilities if out.probabilities is not None else out.values
    report, quality = rt.drift.check(body.model_name, frame, preds)
    return DriftCheckOut.model_validate(
        {"dataset_name": "request", "drift": report.to_dict(), "quality": quality.to_dict()}
    )


@router.get(
    "/monitoring/drift/status/{model}", response_model=DriftStatusOut, responses=responses(404)
)
def drift_status(model: str, rt: RuntimeDep) -> DriftStatusOut:
    """Reference summary, thresholds, live-window fill and the last live result."""
    return DriftStatusOut.model_validate(rt.drift.status(_known(model)))


@router.get(
    "/monitoring/drift/history/{model}", response_model=DriftHistoryOut, responses=responses(404)
)
def drift_history(
    model: str,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most recent results to return.")] = 50,
) -> DriftHistoryOut:
    """Results of the model's closed live windows, newest first."""
    return DriftHistoryOut.model_validate(
        {"model_name": model, "results": rt.drift.history(_known(model), limit)}
    )


@router.post(
    "/monitoring/quality/check",
    response_model=QualityReportOut,
    responses=responses(401, 403, 404, 409, 422),
    dependencies=[Depends(require("predict"))],
)
def quality_check(body: RecordsCheckIn, rt: RuntimeDep) -> QualityReportOut:
    """Missing values, duplicate rows, values outside the reference range and unseen categories
    of posted records (or of the live window), each with a status."""
    if body.records is None:
        _, quality, _ = rt.drift.check_live(body.model_name)
        return QualityReportOut.model_validate(quality.to_dict())
    if not body.records:
        raise InvalidInput(("body", "records"), "at least one record is needed", "too_short")
    frame = _frame(rt, body.model_name, body.records)
    return QualityReportOut.model_validate(rt.drift.quality(body.model_name, frame).to_dict())


@router.post(
    "/monitoring/reference/{model}",
    response_model=ReferenceOut,
    responses=responses(401, 403, 404, 422, 503),
    dependencies=[Depends(require("admin"))],
)
def replace_reference(model: str, body: ReferenceIn, rt: RuntimeDep) -> ReferenceOut:
    """Replace the model's reference profile with one built from the posted records."""
    m = rt.models.get(_known(model))
    frame = _frame(rt, model, body.records)
    if len(frame) < 100:
        raise InvalidInput(
            ("body", "records"), f"a reference needs at least 100 records, got {len(frame)}"
        )
    try:
        profile = profile_for_model(m, frame)
    except ValueError as exc:  # e.g. a column with no values at all cannot be a reference
        raise InvalidInput(("body", "records"), str(exc)) from None
    save_profile(profile, rt.settings.model_dir)
    rt.drift.set_profile(profile)
    return ReferenceOut(
        model_name=model,
        model_version=profile.model_version,
        rows=profile.rows,
        created_at=profile.created_at,
        features={n: f.kind for n, f in profile.features.items()},
    )


def _exposition(rt: RuntimeDep) -> Response:
    # With several worker processes the registry merges them all (see ``scrape_registry``).
    body = generate_latest(scrape_registry(rt.registry))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


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
