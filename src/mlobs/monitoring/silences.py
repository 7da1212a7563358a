"""Silences, as Alertmanager has them: matchers on model and alert type, a start and an end, an
author and a comment. A silenced alert is still recorded and counted, only not notified; when a
silence ends, the open alerts it covered are notified then.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from mlobs.monitoring.alerts import Alert

log = logging.getLogger(__name__)

SilenceState = Literal["pending", "active", "expired"]


@dataclass(frozen=True)
class Silence:
    id: str
    model_name: str | None
    alert_type: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime

    def state(self, now: datetime) -> SilenceState:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def covers(self, alert: Alert) -> bool:
        """The matchers match the alert (whether the silence is in force is ``state``)."""
        return (self.model_name is None or self.model_name == alert.model_name) and (
            self.alert_type is None or self.alert_type == alert.alert_type
        )

    def silences(self, alert: Alert, now: datetime) -> bool:
        return self.state(now) == "active" and self.covers(alert)


class SilenceStore(Protocol):
    def create(self, silence: Silence) -> Silence: ...

    def get(self, silence_id: str) -> Silence: ...

    def list_all(self) -> list[Silence]: ...

    def expire(self, silence_id: str, at: datetime) -> Silence: ...

    def ended_unnotified(self, now: datetime) -> list[Silence]:
        """Silences that have ended by ``now`` whose end no process has claimed yet."""
        ...

    def claim_end(self, silence_id: str, now: datetime) -> bool:
        """Claim notifying the end of a silence: True for exactly one caller."""
        ...


class Silencer:
    """Answers "is this alert silenced now?" from a cache of the stored silences (refreshed at
    most every ``refresh_seconds``, and at once after a local change), and notifies the open
    alerts a silence covered when it ends."""

    def __init__(
        self,
        store: SilenceStore,
        clock: Callable[[], datetime],
        *,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.store, self.clock, self.refresh_seconds = store, clock, refresh_seconds
        self._cache: list[Silence] = []
        self._loaded_at: datetime | None = None
        self._lock = threading.Lock()

    def refresh(self) -> None:
        silences = self.store.list_all()
        with self._lock:
            self._cache, self._loaded_at = silences, self.clock()

    def _current(self) -> list[Silence]:
        now = self.clock()
        if (
            self._loaded_at is None
            or (now - self._loaded_at).total_seconds() > self.refresh_seconds
        ):
            try:
                self.refresh()
            except Exception as exc:  # keep the last known silences while the database is away
                log.warning("could not refresh silences: %s", exc)
        with self._lock:
            return list(self._cache)

    def is_silenced(self, alert: Alert) -> bool:
        now = self.clock()
        return any(s.silences(alert, now) for s in self._current())

    def sweep(self, open_alerts: Iterable[Alert], notify: Callable[[Alert], object]) -> int:
        """Notify the open alerts covered by silences that have ended (and not covered by another
        silence still in force). Returns how many were notified.

        Each ended silence is claimed in the database, so with several workers its alerts are
        notified by one of them, and a silence that ended while no process ran (or was ended
        early by an operator at any moment) is notified at the next sweep. The open alerts are
        read before claiming: a failure there leaves the silences to the next sweep.
        """
        now = self.clock()
        ended = self.store.ended_unnotified(now)
        if not ended:
            return 0
        self.refresh()
        alerts = list(open_alerts)
        notified: set[str] = set()
        for silence in ended:
            if not self.store.claim_end(silence.id, now):
                continue  # another process has it
            for alert in alerts:
                if (
                    alert.id not in notified
                    and silence.covers(alert)
                    and not self.is_silenced(alert)
                ):
                    notify(alert)
                    notified.add(alert.id)
        return len(notified)


def validate(model_name: str | None, alert_type: str | None, starts: datetime, ends: datetime,
             known_models: Sequence[str]) -> list[tuple[str, str]]:  # fmt: skip
    """Problems with a new silence as (field, reason) pairs; empty when it is valid."""
    problems = []
    if model_name is None and alert_type is None:
        problems.append(
            ("model_name", "a silence needs at least one matcher: model_name or alert_type")
        )
    if model_name is not None and model_name not in known_models:
        problems.append(("model_name", f"unknown model; known: {', '.join(known_models)}"))
    if ends <= starts:
        problems.append(("ends_at", "must be after starts_at"))
    return problems
