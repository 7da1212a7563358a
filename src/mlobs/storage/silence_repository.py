"""Silences in the database (``mlobs.monitoring.silences.SilenceStore``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from mlobs.errors import Conflict, NotFound
from mlobs.monitoring.silences import Silence
from mlobs.storage.db import utc
from mlobs.storage.tables import silences


def _silence(row: Any) -> Silence:
    m = row._mapping
    return Silence(
        id=m["id"], model_name=m["model_name"], alert_type=m["alert_type"],
        starts_at=utc(m["starts_at"]), ends_at=utc(m["ends_at"]), created_by=m["created_by"],
        comment=m["comment"], created_at=utc(m["created_at"]),
    )  # fmt: skip


class SilenceRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, silence: Silence) -> Silence:
        with self.engine.begin() as conn:
            conn.execute(insert(silences).values(**silence.__dict__))
        return self.get(silence.id)

    def get(self, silence_id: str) -> Silence:
        with self.engine.connect() as conn:
            row = conn.execute(select(silences).where(silences.c.id == silence_id)).first()
        if row is None:
            raise NotFound("silence", silence_id)
        return _silence(row)

    def list_all(self) -> list[Silence]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(silences).order_by(silences.c.created_at.desc())).all()
        return [_silence(r) for r in rows]

    def expire(self, silence_id: str, at: datetime) -> Silence:
        """End a silence now (Alertmanager's "expire"); 409 when it has ended already."""
        current = self.get(silence_id)
        if current.state(at) == "expired":
            raise Conflict(f"silence {silence_id} has expired already", current="expired")
        with self.engine.begin() as conn:
            # A pending silence ends before it starts: it never silences anything.
            conn.execute(
                update(silences).where(silences.c.id == silence_id)
                .values(ends_at=at, starts_at=min(current.starts_at, at))
            )  # fmt: skip
        return self.get(silence_id)

    def in_force_between(self, start: datetime, end: datetime) -> list[Silence]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(silences).where(silences.c.ends_at > start, silences.c.ends_at <= end)
            ).all()
        return [_silence(r) for r in rows]
