"""Silences in the database (``mlobs.monitoring.silences.SilenceStore``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from mlobs.errors import Conflict, NotFound
from mlobs.monitoring.silences import Silence
from mlobs.storage.db import utc
from mlobs.storage.tables import silences, watermarks

SWEEP = "silence_sweep"


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

    def claim_sweep(self, now: datetime) -> datetime | None:
        """Claim the sweep of the silences that ended in (the last sweep's time, ``now``]: the
        start of that stretch, or None when there is none to claim (the first sweep ever only
        sets the mark; another process has swept up to ``now`` already).

        A compare-and-set on the shared mark: of several processes sweeping at once, exactly one
        gets each stretch; a sweep that fails after claiming loses its stretch's notifications
        (logged by the caller), one that fails before leaves it to the next.
        """
        key = watermarks.c.name == SWEEP
        with self.engine.connect() as conn:
            row = conn.execute(select(watermarks.c.at).where(key)).first()
        if row is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(watermarks).values(name=SWEEP, at=now))
            except IntegrityError:  # another process set the mark first
                pass
            return None
        since = utc(row.at)
        if since >= now:
            return None
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(watermarks).where(key, watermarks.c.at == row.at).values(at=now)
            ).rowcount
        return since if claimed == 1 else None
