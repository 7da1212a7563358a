"""Ground truth in the database (``mlobs.monitoring.ports.LabelStore``).

A label is unique per prediction. Storing a batch is one transaction: every label goes in, or,
when one contradicts a stored label, none does. The label tracker row of a model is updated only
under its revision, in the same transaction that marks the labels it consumed, so every label
feeds the concept-drift detector and one performance window exactly once, whichever worker
process reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from mlobs.errors import AmbiguousId
from mlobs.monitoring.performance import LabelConflict
from mlobs.monitoring.records import LabelRecord, PerformanceResult, TrackerState
from mlobs.storage.db import among, utc
from mlobs.storage.tables import feedback, label_trackers, performance_results, predictions

log = logging.getLogger(__name__)


def _label(row: Any) -> LabelRecord:
    m = row._mapping
    return LabelRecord(
        prediction_id=m["prediction_id"],
        model_name=m["model_name"],
        model_version=m["model_version"],
        predicted_at=utc(m["predicted_at"]),
        received_at=utc(m["received_at"]),
        actual=m["actual"],
        prediction=m["prediction"],
        probability=m["probability"],
        scores=m["scores"],
    )


def _result(row: Any) -> PerformanceResult:
    m = row._mapping
    return PerformanceResult(
        model_name=m["model_name"],
        model_version=m["model_version"],
        kind=m["kind"],
        window_seq=m["window_seq"],
        created_at=utc(m["created_at"]),
        n_rows=m["n_rows"],
        realized=m["realized"],
        estimated=m["estimated"],
        concept=m["concept"],
    )


class FeedbackRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._dialect_name = engine.dialect.name

    # ------------------------------------------------------------------ labels

    def add(self, labels: Sequence[LabelRecord]) -> list[str]:
        if not labels:
            return []
        rows = [
            {
                "prediction_id": lab.prediction_id,
                "model_name": lab.model_name,
                "model_version": lab.model_version,
                "predicted_at": lab.predicted_at,
                "received_at": lab.received_at,
                "actual": lab.actual,
                "prediction": lab.prediction,
                "probability": lab.probability,
                "scores": list(lab.scores) if lab.scores is not None else None,
                "processed": False,
                "window_seq": None,
            }
            for lab in labels
        ]
        ids = list({lab.prediction_id for lab in labels})
        lookup = select(
            feedback.c.model_name, feedback.c.prediction_id, feedback.c.actual,
            feedback.c.received_at,
        ).where(among(feedback.c.prediction_id, ids, self._dialect_name))  # fmt: skip
        with self.engine.begin() as conn:
            stored = {(r.model_name, r.prediction_id): r.actual for r in conn.execute(lookup)}
            outcomes: list[str] = []
            fresh: dict[tuple[str, str], dict[str, Any]] = {}
            for i, (lab, row) in enumerate(zip(labels, rows, strict=True)):
                key = (lab.model_name, lab.prediction_id)
                before = stored.get(key)
                if before is None and key in fresh:
                    before = fresh[key]["actual"]
                if before is None:
                    fresh[key] = row
                    outcomes.append("recorded")
                elif before == lab.actual:
                    outcomes.append("duplicate")
                else:
                    raise LabelConflict(i, lab.prediction_id, before, lab.actual)
            if fresh:
                conn.execute(self._insert(), list(fresh.values()))
                # A concurrent request may have stored some of these between our read and our
                # insert (ours then did nothing): read back, so such a label is reported as the
                # duplicate it is, or as a conflict (and this transaction rolls back).
                now = {
                    (r.model_name, r.prediction_id): (r.actual, utc(r.received_at))
                    for r in conn.execute(lookup)
                }
                for i, lab in enumerate(labels):
                    if outcomes[i] != "recorded":
                        continue
                    actual, received = now[(lab.model_name, lab.prediction_id)]
                    if actual != lab.actual:
                        raise LabelConflict(i, lab.prediction_id, actual, lab.actual)
                    if received != lab.received_at:
                        outcomes[i] = "duplicate"
        return outcomes

    def add_replayed(self, labels: Sequence[LabelRecord]) -> None:
        """Labels accepted while the database was away, from the spill: inserted idempotently
        (a replay that runs twice stores each once). One that meets a different stored label
        for its prediction (sent again after the database returned) loses: the first stored
        label stands, as for any second label; it is logged."""
        if not labels:
            return
        rows = [
            {
                "prediction_id": lab.prediction_id, "model_name": lab.model_name,
                "model_version": lab.model_version, "predicted_at": lab.predicted_at,
                "received_at": lab.received_at, "actual": lab.actual,
                "prediction": lab.prediction, "probability": lab.probability,
                "scores": list(lab.scores) if lab.scores is not None else None,
                "processed": False, "window_seq": None,
            }
            for lab in labels
        ]  # fmt: skip
        ids = [lab.prediction_id for lab in labels]
        with self.engine.begin() as conn:
            conn.execute(self._insert(), rows)
            stored = {
                (r.model_name, r.prediction_id): r.actual
                for r in conn.execute(
                    select(feedback.c.model_name, feedback.c.prediction_id, feedback.c.actual)
                    .where(among(feedback.c.prediction_id, ids, self._dialect_name))
                )
            }  # fmt: skip
        clashes = [
            lab for lab in labels if stored.get((lab.model_name, lab.prediction_id)) != lab.actual
        ]
        if clashes:
            log.warning(
                "%d replayed label(s) differ from labels stored meanwhile; the stored ones stand",
                len(clashes),
            )

    def _insert(self) -> Any:
        return self._dialect.insert(feedback).on_conflict_do_nothing(
            index_elements=["model_name", "prediction_id"]
        )

    def get(self, prediction_id: str, model_name: str | None = None) -> LabelRecord | None:
        """The label of a prediction (of ``model_name`` when given; ``AmbiguousId`` when several
        models have a label for the id and none is given)."""
        stmt = select(feedback).where(feedback.c.prediction_id == prediction_id)
        if model_name is not None:
            stmt = stmt.where(feedback.c.model_name == model_name)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.limit(20)).all()
        if len(rows) > 1:
            raise AmbiguousId(prediction_id, [r.model_name for r in rows])
        return _label(rows[0]) if rows else None

    # ------------------------------------------------------------------ trackers

    def tracker(self, model_name: str) -> TrackerState | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(label_trackers).where(label_trackers.c.model_name == model_name)
            ).first()
        if row is None:
            return None
        m = row._mapping
        return TrackerState(
            model_name=m["model_name"],
            model_version=m["model_version"],
            revision=m["revision"],
            detector=m["detector"],
            window_seq=m["window_seq"],
            window_count=m["window_count"],
            evaluated_through=m["evaluated_through"],
            labels_total=m["labels_total"],
            alarms=m["alarms"],
            updated_at=utc(m["updated_at"]),
        )

    def unprocessed(self, model_name: str, limit: int) -> list[tuple[int, LabelRecord]]:
        stmt = (
            select(feedback)
            .where(feedback.c.model_name == model_name, feedback.c.processed.is_(False))
            .order_by(feedback.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row.id, _label(row)) for row in conn.execute(stmt)]

    def advance(
        self, previous: TrackerState | None, new: TrackerState, windows: dict[int, list[int]]
    ) -> bool:
        values = {
            "model_version": new.model_version,
            "revision": new.revision,
            "detector": dict(new.detector),
            "window_seq": new.window_seq,
            "window_count": new.window_count,
            "evaluated_through": new.evaluated_through,
            "labels_total": new.labels_total,
            "alarms": dict(new.alarms),
            "updated_at": new.updated_at,
        }
        try:
            with self.engine.begin() as conn:
                if previous is None:
                    conn.execute(insert(label_trackers).values(model_name=new.model_name, **values))
                else:
                    done = conn.execute(
                        update(label_trackers)
                        .where(
                            label_trackers.c.model_name == new.model_name,
                            label_trackers.c.revision == previous.revision,
                        )
                        .values(**values)
                    )
                    if done.rowcount != 1:
                        raise _Raced
                for seq, ids in windows.items():
                    marked = conn.execute(
                        update(feedback)
                        .where(feedback.c.id.in_(ids), feedback.c.processed.is_(False))
                        .values(processed=True, window_seq=seq)
                    )
                    if marked.rowcount != len(ids):
                        raise _Raced
        except (_Raced, IntegrityError):
            return False
        return True

    # ------------------------------------------------------------------ windows and results

    def window_labels(self, model_name: str, window_seq: int) -> list[LabelRecord]:
        stmt = (
            select(feedback)
            .where(feedback.c.model_name == model_name, feedback.c.window_seq == window_seq)
            .order_by(feedback.c.id)
        )
        with self.engine.connect() as conn:
            return [_label(row) for row in conn.execute(stmt)]

    def latest_labels(self, model_name: str, n: int) -> list[LabelRecord]:
        stmt = (
            select(feedback)
            .where(feedback.c.model_name == model_name)
            .order_by(feedback.c.id.desc())
            .limit(n)
        )
        with self.engine.connect() as conn:
            rows = [_label(row) for row in conn.execute(stmt)]
        rows.reverse()
        return rows

    def _values(self, r: PerformanceResult) -> dict[str, Any]:
        return {
            "model_name": r.model_name,
            "model_version": r.model_version,
            "kind": r.kind,
            "window_seq": r.window_seq,
            "created_at": r.created_at,
            "n_rows": r.n_rows,
            "realized": dict(r.realized) if r.realized is not None else None,
            "estimated": dict(r.estimated) if r.estimated is not None else None,
            "concept": dict(r.concept) if r.concept is not None else None,
        }

    def save_window(self, result: PerformanceResult) -> bool:
        try:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    update(label_trackers)
                    .where(
                        label_trackers.c.model_name == result.model_name,
                        label_trackers.c.evaluated_through == result.window_seq - 1,
                    )
                    .values(
                        evaluated_through=result.window_seq,
                        revision=label_trackers.c.revision + 1,
                    )
                )
                if moved.rowcount != 1:
                    raise _Raced
                conn.execute(insert(performance_results).values(**self._values(result)))
        except (_Raced, IntegrityError):
            return False
        return True

    def save_estimate(self, result: PerformanceResult) -> bool:
        stmt = self._dialect.insert(performance_results).on_conflict_do_nothing(
            index_elements=["model_name", "kind", "window_seq"]
        )
        with self.engine.begin() as conn:
            done = conn.execute(stmt, [self._values(result)])
        return bool(done.rowcount)

    def history(self, model_name: str, kind: str, limit: int) -> list[PerformanceResult]:
        stmt = (
            select(performance_results)
            .where(
                and_(
                    performance_results.c.model_name == model_name,
                    performance_results.c.kind == kind,
                )
            )
            .order_by(performance_results.c.window_seq.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_result(row) for row in conn.execute(stmt)]

    # ------------------------------------------------------------------ logged predictions

    def recent_probabilities(self, model_name: str, model_version: str, n: int) -> list[float]:
        stmt = (
            select(predictions.c.probability)
            .where(
                predictions.c.model_name == model_name,
                predictions.c.model_version == model_version,
                predictions.c.probability.is_not(None),
            )
            .order_by(predictions.c.created_at.desc())
            .limit(n)
        )
        with self.engine.connect() as conn:
            return [float(p) for p in conn.execute(stmt).scalars()]

    def count_predictions(self, model_name: str, model_version: str) -> int:
        stmt = (
            select(func.count())
            .select_from(predictions)
            .where(
                predictions.c.model_name == model_name,
                predictions.c.model_version == model_version,
            )
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())


class _Raced(Exception):
    """Another process changed the rows between our read and our write: roll back."""
