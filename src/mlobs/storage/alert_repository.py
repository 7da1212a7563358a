"""Alerts in the database (``mlobs.monitoring.alerts.AlertStore``).

One open alert per fingerprint is held by a unique ``open_key`` column (the fingerprint while
open, NULL once resolved): two processes firing the same fingerprint at once both try to insert,
one wins, and the other retries as a repeat. Transitions are conditional updates on the state
they start from, so concurrent operators cannot both acknowledge or resolve.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mlobs.errors import NotFound
from mlobs.monitoring.alerts import (
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertFilter,
    EventKind,
    InvalidTransition,
    Signal,
    State,
    transition,
)
from mlobs.storage.db import utc, utc_or_none
from mlobs.storage.tables import alert_events, alerts

SYSTEM = "mlobs"


class _Raced(Exception):
    """The row changed between our read and our guarded update: roll back and read again."""


def _alert(row: Any, events: tuple[AlertEvent, ...] = ()) -> Alert:
    m = row._mapping
    return Alert(
        id=m["id"], fingerprint=m["fingerprint"], model_name=m["model_name"],
        family=m["family"], alert_type=m["alert_type"], scope=m["scope"],
        severity=m["severity"], state=m["state"], value=m["value"], threshold=m["threshold"],
        message=m["message"], opened_at=utc(m["opened_at"]),
        updated_at=utc(m["updated_at"]),
        last_seen_at=utc(m["last_seen_at"]),
        occurrences=m["occurrences"], clear_count=m["clear_count"],
        acknowledged_by=m["acknowledged_by"], acknowledged_at=utc_or_none(m["acknowledged_at"]),
        resolved_by=m["resolved_by"], resolved_at=utc_or_none(m["resolved_at"]), note=m["note"],
        events=events,
    )  # fmt: skip


class AlertRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._locking = engine.dialect.name == "postgresql"

    def _open(self, conn: Connection, fingerprint: str) -> Any:
        stmt = select(alerts).where(alerts.c.open_key == fingerprint)
        if self._locking:
            stmt = stmt.with_for_update()
        return conn.execute(stmt).first()

    def _event(
        self, conn: Connection, alert_id: str, kind: EventKind, at: datetime, **kw: Any
    ) -> None:
        conn.execute(insert(alert_events).values(alert_id=alert_id, kind=kind, at=at, **kw))

    def fire(self, signal: Signal, at: datetime) -> tuple[Alert, EventKind | None]:
        for _ in range(10):
            try:
                with self.engine.begin() as conn:
                    row = self._open(conn, signal.fingerprint)
                    if row is None:
                        alert_id = str(uuid.uuid4())
                        conn.execute(insert(alerts).values(
                            id=alert_id, fingerprint=signal.fingerprint,
                            open_key=signal.fingerprint, model_name=signal.model_name,
                            family=signal.family, alert_type=signal.alert_type,
                            scope=signal.scope, severity=signal.severity, state="active",
                            value=signal.value, threshold=signal.threshold,
                            message=signal.message, opened_at=at, updated_at=at,
                            last_seen_at=at, occurrences=1, clear_count=0,
                        ))  # fmt: skip
                        self._event(conn, alert_id, "opened", at, severity=signal.severity,
                                    value=signal.value)  # fmt: skip
                        kind: EventKind = "opened"
                    else:
                        alert_id = row.id
                        escalate = SEVERITY_RANK[signal.severity] > SEVERITY_RANK[row.severity]
                        values: dict[str, Any] = {
                            "occurrences": alerts.c.occurrences + 1, "last_seen_at": at,
                            "updated_at": at, "value": signal.value, "clear_count": 0,
                            "message": signal.message,
                        }  # fmt: skip
                        if escalate:
                            values |= {"severity": signal.severity,
                                       "alert_type": signal.alert_type,
                                       "threshold": signal.threshold}  # fmt: skip
                        # Guarded on the alert still being open with the state we read (SQLite
                        # takes no row lock): a resolve in between makes this a retry instead.
                        res = conn.execute(
                            update(alerts)
                            .where(alerts.c.id == alert_id,
                                   alerts.c.open_key == signal.fingerprint,
                                   alerts.c.state == row.state)
                            .values(**values)
                        )  # fmt: skip
                        if res.rowcount != 1:
                            raise _Raced
                        kind = "escalated" if escalate else "repeated"
                        self._event(conn, alert_id, kind, at, severity=signal.severity,
                                    value=signal.value)  # fmt: skip
                return self.get(alert_id), kind
            except (IntegrityError, _Raced):
                continue  # another writer got there first: read again and repeat or open
        raise RuntimeError(f"could not record alert {signal.fingerprint} after 10 tries")

    def clear(self, fingerprint: str, at: datetime, resolve_after: int) -> Alert | None:
        for _ in range(10):
            try:
                return self._clear_once(fingerprint, at, resolve_after)
            except _Raced:
                continue  # a repeat, an operator or another process changed it: read again
        raise RuntimeError(f"could not clear alert {fingerprint} after 10 tries")

    def _clear_once(self, fingerprint: str, at: datetime, resolve_after: int) -> Alert | None:
        with self.engine.begin() as conn:
            row = self._open(conn, fingerprint)
            if row is None:
                return None
            clears = row.clear_count + 1
            # Guarded on what was read: on SQLite nothing locks the row between read and write.
            guard = (
                alerts.c.id == row.id,
                alerts.c.open_key == fingerprint,
                alerts.c.state == row.state,
                alerts.c.clear_count == row.clear_count,
                alerts.c.occurrences == row.occurrences,
            )
            if clears < resolve_after:
                res = conn.execute(update(alerts).where(*guard).values(clear_count=clears))
                if res.rowcount != 1:
                    raise _Raced
                return None
            note = f"condition clear for {clears} consecutive evaluations"
            res = conn.execute(update(alerts).where(*guard).values(
                clear_count=clears, state="resolved", open_key=None, resolved_by=SYSTEM,
                resolved_at=at, updated_at=at, note=note,
            ))  # fmt: skip
            if res.rowcount != 1:
                raise _Raced
            self._event(conn, row.id, "resolved", at, by=SYSTEM, note=note)
            alert_id = row.id
        return self.get(alert_id)

    def transition(
        self, alert_id: str, to: State, at: datetime, by: str, note: str | None
    ) -> Alert:
        with self.engine.begin() as conn:
            stmt = select(alerts).where(alerts.c.id == alert_id)
            row = conn.execute(stmt.with_for_update() if self._locking else stmt).first()
            if row is None:
                raise NotFound("alert", alert_id)
            new = transition(_alert(row), to, at, by, note)  # raises InvalidTransition
            values: dict[str, Any] = {
                "state": new.state, "updated_at": at, "note": new.note,
                "acknowledged_by": new.acknowledged_by, "acknowledged_at": new.acknowledged_at,
                "resolved_by": new.resolved_by, "resolved_at": new.resolved_at,
            }  # fmt: skip
            if to == "resolved":
                values["open_key"] = None
            res = conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == row.state)
                .values(**values)
            )
            if res.rowcount != 1:  # someone else moved it first
                current = conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id))
                raise InvalidTransition(alert_id, current.scalar_one(), to)
            kind: EventKind = "acknowledged" if to == "acknowledged" else "resolved"
            self._event(conn, alert_id, kind, at, by=by, note=note)
        return self.get(alert_id)

    def get(self, alert_id: str) -> Alert:
        with self.engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFound("alert", alert_id)
            ev = conn.execute(
                select(alert_events)
                .where(alert_events.c.alert_id == alert_id)
                .order_by(alert_events.c.id)
            ).all()
        events = tuple(
            AlertEvent(
                kind=e.kind,
                at=utc(e.at),
                severity=e.severity,
                value=e.value,
                by=e.by,
                note=e.note,
            )  # fmt: skip
            for e in ev
        )
        return _alert(row, events)

    def _filtered(self, stmt: Select[Any], f: AlertFilter) -> Select[Any]:
        if f.state is not None:
            stmt = stmt.where(alerts.c.state == f.state)
        if f.severity is not None:
            stmt = stmt.where(alerts.c.severity == f.severity)
        if f.model_name is not None:
            stmt = stmt.where(alerts.c.model_name == f.model_name)
        if f.alert_type is not None:
            stmt = stmt.where(alerts.c.alert_type == f.alert_type)
        return stmt

    def list(self, f: AlertFilter) -> tuple[list[Alert], int]:
        with self.engine.connect() as conn:
            total = conn.execute(
                self._filtered(select(func.count()).select_from(alerts), f)
            ).scalar_one()
            rows = conn.execute(
                self._filtered(select(alerts), f)
                .order_by(alerts.c.opened_at.desc(), alerts.c.id)
                .limit(f.limit)
                .offset(f.offset)
            ).all()
        return [_alert(r) for r in rows], int(total)

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            by_state = conn.execute(select(alerts.c.state, func.count()).group_by(alerts.c.state))
            out["by_status"] = {s: int(n) for s, n in by_state}
            for key, col in (("by_severity", alerts.c.severity),
                             ("by_model", alerts.c.model_name),
                             ("by_type", alerts.c.alert_type)):  # fmt: skip
                rows = conn.execute(
                    select(col, func.count()).where(alerts.c.open_key.is_not(None)).group_by(col)
                )
                out[key] = {k: int(n) for k, n in rows}
        return out

    def open_counts(self) -> dict[str, int]:
        return self.summary()["by_model"]
