"""Silences: list, create, read and expire (Alertmanager's DELETE)."""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from mlobs.api.auth import Guard, KeyPolicy
from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import BODY, responses
from mlobs.api.schemas import SilenceIn, SilenceListOut, SilenceOut
from mlobs.errors import InvalidInput
from mlobs.monitoring.silences import Silence, validate


def _out(s: Silence, rt: RuntimeDep) -> SilenceOut:
    return SilenceOut(**s.__dict__, status=s.state(rt.clock()))


def build_router(policy: KeyPolicy) -> APIRouter:
    """The silence routes; creating and expiring need the ``admin`` scope where the policy
    enforces it."""
    router = APIRouter(tags=["alerts"])
    admin = Guard.of(policy, "admin")

    @router.get(
        "/monitoring/silences", response_model=SilenceListOut, responses=responses(422, 503)
    )
    def list_silences(
        rt: RuntimeDep,
        status: Annotated[Literal["pending", "active", "expired"] | None, Query()] = None,
    ) -> SilenceListOut:
        """Silences, newest first, optionally by status."""
        now = rt.clock()
        items = [
            s for s in rt.silences.store.list_all() if status is None or s.state(now) == status
        ]
        return SilenceListOut(silences=[_out(s, rt) for s in items])

    @router.post(
        "/monitoring/silences",
        response_model=SilenceOut,
        status_code=201,
        responses=responses(*BODY, 503, *admin.statuses),
        dependencies=list(admin.dependencies),
    )
    def create_silence(body: SilenceIn, rt: RuntimeDep) -> SilenceOut:
        """Silence alerts matching the model and/or alert type from ``starts_at`` to ``ends_at``:
        they are still recorded and counted, but not notified."""
        now = rt.clock()
        # Stored as UTC: SQLite keeps no offset, so a +05:00 time would otherwise move by 5 hours.
        starts = (body.starts_at or now).astimezone(timezone.utc)
        if (body.ends_at is None) == (body.duration_seconds is None):
            raise InvalidInput(
                ("body", "ends_at"), "give exactly one of ends_at and duration_seconds"
            )
        try:
            ends = (
                body.ends_at or starts + timedelta(seconds=body.duration_seconds or 0)
            ).astimezone(timezone.utc)
        except OverflowError:
            raise InvalidInput(
                ("body", "duration_seconds"), "the silence would end after year 9999"
            ) from None
        problems = validate(body.model_name, body.alert_type, starts, ends, rt.models.names)
        if problems:
            field, reason = problems[0]
            raise InvalidInput(("body", field), reason)
        silence = Silence(
            id=str(uuid.uuid4()), model_name=body.model_name, alert_type=body.alert_type,
            starts_at=starts, ends_at=ends, created_by=body.created_by, comment=body.comment,
            created_at=now,
        )  # fmt: skip
        created = rt.silences.store.create(silence)
        rt.silences.refresh()
        return _out(created, rt)

    @router.get(
        "/monitoring/silences/{silence_id}",
        response_model=SilenceOut,
        responses=responses(404, 503),
    )
    def get_silence(silence_id: str, rt: RuntimeDep) -> SilenceOut:
        """One silence."""
        return _out(rt.silences.store.get(silence_id), rt)

    @router.delete(
        "/monitoring/silences/{silence_id}",
        response_model=SilenceOut,
        responses=responses(404, 409, 503, *admin.statuses),
        dependencies=list(admin.dependencies),
    )
    def expire_silence(silence_id: str, rt: RuntimeDep) -> SilenceOut:
        """Expire a silence now; the open alerts it covered are notified at the next sweep."""
        expired = rt.silences.store.expire(silence_id, rt.clock())
        rt.silences.refresh()
        return _out(expired, rt)

    return router
