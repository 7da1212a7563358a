"""Alerts: list, summary, details with history, acknowledge and resolve."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query

from mlobs.api.auth import Guard, KeyPolicy
from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import BODY, responses
from mlobs.api.schemas import AlertActionIn, AlertListOut, AlertOut, AlertSummaryOut
from mlobs.monitoring.alerts import AlertFilter

ActionBody = Annotated[AlertActionIn | None, Body()]


def build_router(policy: KeyPolicy) -> APIRouter:
    """The alert routes; acknowledge and resolve need the ``admin`` scope where the policy
    enforces it."""
    router = APIRouter(tags=["alerts"])
    admin = Guard.of(policy, "admin")

    @router.get("/monitoring/alerts", response_model=AlertListOut, responses=responses(422, 503))
    def list_alerts(
        rt: RuntimeDep,
        status: Annotated[Literal["active", "acknowledged", "resolved"] | None, Query()] = None,
        severity: Annotated[Literal["warning", "critical"] | None, Query()] = None,
        model: Annotated[str | None, Query(max_length=32)] = None,
        alert_type: Annotated[str | None, Query(alias="type", max_length=48)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> AlertListOut:
        """Alerts, newest first, filtered by status, severity, model and type, in pages."""
        f = AlertFilter(status, severity, model, alert_type, limit, offset)
        items, total = rt.alerts.store.list(f)
        return AlertListOut(
            total=total,
            limit=limit,
            offset=offset,
            alerts=[AlertOut.from_domain(a) for a in items],
        )

    @router.get(
        "/monitoring/alerts/summary", response_model=AlertSummaryOut, responses=responses(503)
    )
    def alert_summary(rt: RuntimeDep) -> AlertSummaryOut:
        """Counts of all alerts by status, and of open alerts by severity, model and type."""
        return AlertSummaryOut(**rt.alerts.store.summary())

    @router.get(
        "/monitoring/alerts/{alert_id}", response_model=AlertOut, responses=responses(404, 503)
    )
    def get_alert(alert_id: str, rt: RuntimeDep) -> AlertOut:
        """One alert with its event history (opened, repeated, escalated, acknowledged,
        resolved)."""
        return AlertOut.from_domain(rt.alerts.store.get(alert_id), with_events=True)

    @router.post(
        "/monitoring/alerts/{alert_id}/acknowledge",
        response_model=AlertOut,
        responses=responses(*BODY, 404, 409, 503, *admin.statuses),
        dependencies=list(admin.dependencies),
    )
    def acknowledge(alert_id: str, rt: RuntimeDep, body: ActionBody = None) -> AlertOut:
        """Acknowledge an active alert (409 with the current status otherwise)."""
        b = body or AlertActionIn()
        alert = rt.alerts.acknowledge(alert_id, b.by, b.note)
        return AlertOut.from_domain(alert, with_events=True)

    @router.post(
        "/monitoring/alerts/{alert_id}/resolve",
        response_model=AlertOut,
        responses=responses(*BODY, 404, 409, 503, *admin.statuses),
        dependencies=list(admin.dependencies),
    )
    def resolve(alert_id: str, rt: RuntimeDep, body: ActionBody = None) -> AlertOut:
        """Resolve an active or acknowledged alert, recording who and why."""
        b = body or AlertActionIn()
        return AlertOut.from_domain(rt.alerts.resolve(alert_id, b.by, b.note), with_events=True)

    return router
