"""Monitoring: the Prometheus exposition (drift, quality and alerts join it in later modules)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mlobs.api.deps import RuntimeDep

router = APIRouter(tags=["monitoring"])


def _exposition(rt: RuntimeDep) -> Response:
    return Response(generate_latest(rt.registry), media_type=CONTENT_TYPE_LATEST)


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
