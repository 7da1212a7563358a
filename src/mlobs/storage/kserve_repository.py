"""Halves of KServe payload-logger events: a request waits for its response (or the other way
round) in the database, so that the two meet whichever worker each reaches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite

from mlobs.storage.db import utc
from mlobs.storage.tables import kserve_halves


@dataclass(frozen=True)
class Pair:
    model_name: str
    request: Any
    response: Any
    event_time: datetime | None


class KServeHalves:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"

    def meet(
        self,
        event_id: str,
        kind: str,
        model_name: str,
        body: Any,
        event_time: datetime | None,
        now: datetime,
    ) -> Pair | None:
        """Keep this half; when the other is here, take both (they are deleted) and return them.
        A half sent twice is kept once. On PostgreSQL the two halves of one id are serialized by
        an advisory lock on the id (on SQLite, writers are serialized anyway)."""
        dialect = postgresql if self._pg else sqlite
        row = {"event_id": event_id, "kind": kind, "model_name": model_name, "body": body,
               "event_time": event_time, "received_at": now}  # fmt: skip
        with self.engine.begin() as conn:
            if self._pg:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:id))"), {"id": event_id})
            conn.execute(dialect.insert(kserve_halves).on_conflict_do_nothing(), [row])
            halves = {
                r.kind: r
                for r in conn.execute(
                    select(kserve_halves).where(kserve_halves.c.event_id == event_id)
                )
            }
            if set(halves) != {"request", "response"}:
                return None
            conn.execute(delete(kserve_halves).where(kserve_halves.c.event_id == event_id))
        times = [h.event_time for h in halves.values() if h.event_time is not None]
        return Pair(
            model_name=halves["request"].model_name,
            request=halves["request"].body,
            response=halves["response"].body,
            event_time=utc(min(times)) if times else None,
        )

    def restore(self, event_id: str, pair: Pair, now: datetime) -> None:
        """Both halves of a pair that could not be logged wait again."""
        dialect = postgresql if self._pg else sqlite
        rows = [
            {"event_id": event_id, "kind": kind, "model_name": pair.model_name, "body": body,
             "event_time": pair.event_time, "received_at": now}
            for kind, body in (("request", pair.request), ("response", pair.response))
        ]  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(dialect.insert(kserve_halves).on_conflict_do_nothing(), rows)

    def expire(self, before: datetime) -> int:
        """Drop the halves received before ``before`` (their other half never came); how many."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(kserve_halves).where(kserve_halves.c.received_at < before))
        return int(done.rowcount or 0)

    def waiting(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(kserve_halves.c.event_id)).all())
