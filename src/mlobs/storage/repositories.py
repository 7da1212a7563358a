"""Repositories: SQL in, domain records out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from mlobs.errors import AmbiguousId
from mlobs.monitoring.records import PredictionRecord
from mlobs.storage.db import among, utc
from mlobs.storage.tables import predictions


class PredictionRepository:
    """The prediction log table. Implements ``mlobs.monitoring.ports.PredictionStore``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert_many(self, records: Sequence[PredictionRecord]) -> None:
        """Insert records in one transaction (all or none)."""
        if not records:
            return
        # A retried batch may hold rows that did commit (the acknowledgement was lost): the
        # key already stored is the same prediction, so it is skipped, not an error.
        with self.engine.begin() as conn:
            conn.execute(self._insert(), _rows(records))

    def insert_new(self, records: Sequence[PredictionRecord]) -> set[str]:
        """Insert in one transaction the records whose (model, id) is not stored yet; the ids of
        those inserted now (the others are duplicates: sent before, or twice in the batch)."""
        if not records:
            return set()
        with self.engine.begin() as conn:
            if self.engine.dialect.name != "postgresql":
                result = conn.execute(self._insert().returning(predictions.c.id), _rows(records))
                return {row.id for row in result}
            # PostgreSQL: one INSERT ... RETURNING of a thousand rows costs several times the
            # pipelined executemany; the rows this transaction wrote are those whose xmin is its
            # own transaction id (a row that existed keeps the xmin of the one that wrote it).
            conn.execute(self._insert(), _rows(records))
            new: set[str] = set()
            by_model: dict[str, list[str]] = {}
            for r in records:
                by_model.setdefault(r.model_name, []).append(r.id)
            for model, ids in by_model.items():
                for i in range(0, len(ids), 10_000):
                    mine = select(predictions.c.id).where(
                        predictions.c.model_name == model,
                        among(predictions.c.id, ids[i : i + 10_000], "postgresql"),
                        text("predictions.xmin = pg_current_xact_id()::xid"),
                    )
                    new.update(conn.execute(mine).scalars())
            return new

    def _insert(self) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(predictions).on_conflict_do_nothing(
            index_elements=["model_name", "id"]
        )

    def get(self, prediction_id: str, model_name: str | None = None) -> PredictionRecord | None:
        """The prediction with this id (of ``model_name``, when given). A sender's id known under
        several models needs the model: ``AmbiguousId`` names them."""
        stmt = select(predictions).where(predictions.c.id == prediction_id)
        if model_name is not None:
            stmt = stmt.where(predictions.c.model_name == model_name)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.limit(20)).all()
        if len(rows) > 1:
            raise AmbiguousId(prediction_id, [r.model_name for r in rows])
        return _record(rows[0]) if rows else None

    def get_many(
        self, prediction_ids: Sequence[str], *, features: bool = True
    ) -> dict[str, list[PredictionRecord]]:
        """Stored predictions among the ids, by id: one per model that has the id (chunks of 500
        ids per query). Without ``features`` the records carry an empty mapping."""
        out: dict[str, list[PredictionRecord]] = {}
        ids = list(dict.fromkeys(prediction_ids))
        cols = [c for c in predictions.c if features or c.name != "features"]
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                match = among(predictions.c.id, ids[i : i + 500], self.engine.dialect.name)
                stmt = select(*cols).where(match)
                for row in conn.execute(stmt):
                    out.setdefault(row.id, []).append(_record(row))
        return out

    def count(self, model_name: str | None = None) -> int:
        stmt = select(func.count()).select_from(predictions)
        if model_name is not None:
            stmt = stmt.where(predictions.c.model_name == model_name)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())


def _rows(records: Sequence[PredictionRecord]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "model_name": r.model_name,
            "model_version": r.model_version,
            "created_at": r.created_at,
            "features": dict(r.features),
            "prediction": r.prediction,
            "probability": r.probability,
            "latency_ms": r.latency_ms,
            "scores": list(r.scores) if r.scores is not None else None,
            "label": r.label,
        }
        for r in records
    ]


def _record(row: Any) -> PredictionRecord:
    m = row._mapping
    return PredictionRecord(
        id=m["id"],
        model_name=m["model_name"],
        model_version=m["model_version"],
        created_at=utc(m["created_at"]),
        features=m.get("features") or {},
        prediction=m["prediction"],
        probability=m["probability"],
        latency_ms=m["latency_ms"],
        scores=m["scores"],
        label=m["label"],
    )
