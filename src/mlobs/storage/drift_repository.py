"""Live drift windows and drift results in the database (``mlobs.monitoring.ports.WindowStore``).

Several worker processes add their counts to one open window per model with additive upserts
(``count = count + excluded.count``). Closing is a conditional update (``status = 'open'`` in the
WHERE clause), so exactly one caller closes a window and evaluates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from mlobs.monitoring.profiles import ReferenceProfile
from mlobs.monitoring.records import DriftResult, WindowInfo
from mlobs.monitoring.windows import DUPLICATES, WindowCounts
from mlobs.storage.db import utc, utc_or_none
from mlobs.storage.tables import drift_results, drift_window_counts, drift_windows

MISSING_BIN, OUTSIDE_BIN = -1, -2


def _window(row: Any) -> WindowInfo:
    m = row._mapping
    opened = utc(m["opened_at"])
    return WindowInfo(
        id=m["id"],
        model_name=m["model_name"],
        seq=m["seq"],
        profile_version=m["profile_version"],
        status=m["status"],
        opened_at=opened,
        n_rows=int(m["n_rows"]),
        closed_at=utc_or_none(m["closed_at"]),
    )


def _count_rows(window_id: int, delta: WindowCounts) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for feature, counts in delta.counts.items():
        for b in np.flatnonzero(counts):
            rows.append({"window_id": window_id, "feature": feature, "bin": int(b),
                         "count": int(counts[b])})  # fmt: skip
    for feature, n in delta.missing.items():
        if n:
            rows.append(
                {"window_id": window_id, "feature": feature, "bin": MISSING_BIN, "count": n}
            )
    for feature, n in delta.out_of_range.items():
        if n:
            rows.append(
                {"window_id": window_id, "feature": feature, "bin": OUTSIDE_BIN, "count": n}
            )
    if delta.duplicates:
        rows.append({"window_id": window_id, "feature": DUPLICATES, "bin": 0,
                     "count": delta.duplicates})  # fmt: skip
    return rows


class DriftRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ windows

    def _upsert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        dialect = self.engine.dialect.name
        t = drift_window_counts
        if dialect == "postgresql":
            pg = postgresql.insert(t)
            pg_stmt = pg.on_conflict_do_update(
                index_elements=[t.c.window_id, t.c.feature, t.c.bin],
                set_={"count": t.c.count + pg.excluded["count"]},
            )
            conn.execute(pg_stmt, rows)
        else:
            lite = sqlite.insert(t)
            lite_stmt = lite.on_conflict_do_update(
                index_elements=[t.c.window_id, t.c.feature, t.c.bin],
                set_={"count": t.c.count + lite.excluded["count"]},
            )
            conn.execute(lite_stmt, rows)

    def open_window(self, model_name: str) -> WindowInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(drift_windows)
                .where(drift_windows.c.model_name == model_name, drift_windows.c.status == "open")
                .order_by(drift_windows.c.seq.desc())
                .limit(1)
            ).first()
        return _window(row) if row is not None else None

    def _open_new(self, model_name: str, profile_version: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            # Re-checked in the same transaction as the insert: a process that reads no open
            # window here reads the same highest seq as any rival, and the unique (model, seq)
            # makes the slower insert fail instead of opening a second window.
            already = conn.execute(
                select(drift_windows.c.id).where(
                    drift_windows.c.model_name == model_name, drift_windows.c.status == "open"
                )
            ).first()
            if already is not None:
                return
            last = conn.execute(
                select(drift_windows.c.seq)
                .where(drift_windows.c.model_name == model_name)
                .order_by(drift_windows.c.seq.desc())
                .limit(1)
            ).scalar()
            try:
                conn.execute(
                    insert(drift_windows).values(
                        model_name=model_name,
                        seq=(last or 0) + 1,
                        profile_version=profile_version,
                        status="open",
                        opened_at=now,
                        n_rows=0,
                    )
                )
            except IntegrityError:  # another process opened it first: use theirs
                conn.rollback()

    def add_counts(
        self,
        model_name: str,
        profile_version: str,
        delta: WindowCounts,
        now: datetime,
        *,
        known: WindowInfo | None = None,
    ) -> WindowInfo | None:
        for _ in range(20):
            window, known = known or self.open_window(model_name), None
            if window is None:
                self._open_new(model_name, profile_version, now)
                continue
            if window.profile_version != profile_version:
                return None
            with self.engine.begin() as conn:
                # The row update comes first: it takes the window's row lock (PostgreSQL) or the
                # write lock (SQLite), so a concurrent close is either before or after us.
                res = conn.execute(
                    update(drift_windows)
                    .where(drift_windows.c.id == window.id, drift_windows.c.status == "open")
                    .values(n_rows=drift_windows.c.n_rows + delta.n_rows)
                )
                if res.rowcount != 1:
                    conn.rollback()
                    continue  # closed meanwhile: the delta goes to the next window
                self._upsert(conn, _count_rows(window.id, delta))
            return WindowInfo(**{**window.__dict__, "n_rows": window.n_rows + delta.n_rows})
        raise RuntimeError(f"could not add counts to a window of {model_name!r} after 20 tries")

    def _end_open(self, window_id: int, status: str, now: datetime) -> bool:
        """Move an open window to ``status``; True only for the caller whose update did it."""
        with self.engine.begin() as conn:
            res = conn.execute(
                update(drift_windows)
                .where(drift_windows.c.id == window_id, drift_windows.c.status == "open")
                .values(status=status, closed_at=now)
            )
            return res.rowcount == 1

    def close(self, window_id: int, now: datetime) -> bool:
        return self._end_open(window_id, "closing", now)

    def discard(self, window_id: int, now: datetime) -> bool:
        return self._end_open(window_id, "discarded", now)

    def reclaim_stale(self, model_name: str, before: datetime, now: datetime) -> list[int]:
        """Windows left in 'closing' since before ``before`` (their evaluator failed or died),
        claimed by this caller: each is handed to exactly one caller, once per timeout."""
        with self.engine.connect() as conn:
            stale = (
                conn.execute(
                    select(drift_windows.c.id).where(
                        drift_windows.c.model_name == model_name,
                        drift_windows.c.status == "closing",
                        drift_windows.c.closed_at < before,
                    )
                )
                .scalars()
                .all()
            )
        claimed = []
        for window_id in stale:
            with self.engine.begin() as conn:
                res = conn.execute(
                    update(drift_windows)
                    .where(drift_windows.c.id == window_id,
                           drift_windows.c.status == "closing",
                           drift_windows.c.closed_at < before)
                    .values(closed_at=now)
                )  # fmt: skip
                if res.rowcount == 1:
                    claimed.append(int(window_id))
        return claimed

    def read_counts(self, window_id: int, profile: ReferenceProfile) -> WindowCounts:
        out = WindowCounts.empty(profile)
        with self.engine.connect() as conn:
            n_rows = conn.execute(
                select(drift_windows.c.n_rows).where(drift_windows.c.id == window_id)
            ).scalar_one()
            rows = conn.execute(
                select(drift_window_counts).where(drift_window_counts.c.window_id == window_id)
            ).all()
        out.n_rows = int(n_rows)
        for r in rows:
            m = r._mapping
            feature, b, n = m["feature"], m["bin"], int(m["count"])
            if feature == DUPLICATES:
                out.duplicates += n
            elif b == MISSING_BIN:
                out.missing[feature] = out.missing.get(feature, 0) + n
            elif b == OUTSIDE_BIN:
                out.out_of_range[feature] = out.out_of_range.get(feature, 0) + n
            elif feature in out.counts and b < len(out.counts[feature]):
                out.counts[feature][b] += n
        return out

    # ------------------------------------------------------------------ results

    def save_result(self, result: DriftResult) -> bool:
        """Store a result. For a live window, in the same transaction as marking the window
        'closed': False (and nothing stored) when it was evaluated already."""
        with self.engine.begin() as conn:
            if result.window_id is not None:
                res = conn.execute(
                    update(drift_windows)
                    .where(drift_windows.c.id == result.window_id,
                           drift_windows.c.status == "closing")
                    .values(status="closed")
                )  # fmt: skip
                if res.rowcount != 1:
                    return False
            conn.execute(
                insert(drift_results).values(
                    model_name=result.model_name,
                    dataset_name=result.dataset_name,
                    window_id=result.window_id,
                    created_at=result.created_at,
                    n_rows=result.n_rows,
                    status=result.status,
                    dataset_drift=result.dataset_drift,
                    drift_share=result.drift_share,
                    drifted_features_count=result.drifted_features_count,
                    report=dict(result.report),
                    quality=dict(result.quality) if result.quality is not None else None,
                    window_start=result.window_start,
                    window_end=result.window_end,
                )
            )
        return True

    def history(
        self, model_name: str, dataset_name: str | Sequence[str], limit: int
    ) -> list[DriftResult]:
        names = [dataset_name] if isinstance(dataset_name, str) else list(dataset_name)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(drift_results)
                .where(
                    drift_results.c.model_name == model_name,
                    drift_results.c.dataset_name.in_(names),
                )
                .order_by(drift_results.c.created_at.desc(), drift_results.c.id.desc())
                .limit(limit)
            ).all()
        out = []
        for r in rows:
            m = r._mapping
            created = utc(m["created_at"])
            out.append(
                DriftResult(
                    model_name=m["model_name"],
                    dataset_name=m["dataset_name"],
                    window_id=m["window_id"],
                    created_at=created,
                    n_rows=int(m["n_rows"]),
                    status=m["status"],
                    dataset_drift=bool(m["dataset_drift"]),
                    drift_share=float(m["drift_share"]),
                    drifted_features_count=int(m["drifted_features_count"]),
                    report=m["report"],
                    quality=m["quality"],
                    window_start=utc(m["window_start"]) if m["window_start"] else None,
                    window_end=utc(m["window_end"]) if m["window_end"] else None,
                )
            )
        return out
