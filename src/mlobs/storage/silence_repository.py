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
            # One that has ended already silenced nothing: there is nothing to notify.
            done = silence.created_at if silence.ends_at <= silence.created_at else None
            conn.execute(insert(silences).values(**silence.__dict__, end_notified_at=done))
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
            # A pending silence ends before it starts: it never silenced anything, so its end
            # has nothing to notify.
            pending = current.state(at) == "pending"
            conn.execute(
                update(silences).where(silences.c.id == silence_id)
                .values(ends_at=at, starts_at=min(current.starts_at, at),
                        end_notified_at=at if pending else None)
            )  # fmt: skip
        return self.get(silence_id)

    def ended_unnotified(self, now: datetime) -> list[Silence]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(silences).where(
                    silences.c.ends_at <= now, silences.c.end_notified_at.is_(None)
                )
            ).all()
        return [_silence(r) for r in rows]

    def claim_end(self, silence_id: str, now: datetime) -> bool:
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(silences)
                .where(silences.c.id == silence_id, silences.c.end_notified_at.is_(None))
                .values(end_notified_at=now)
            ).rowcount
        return bool(claimed == 1)
