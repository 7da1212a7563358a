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

    def in_force_between(self, start: datetime, end: datetime) -> list[Silence]:
        """Silences whose end lies in (start, end]: the ones that just ended."""
        ...

    def claim_sweep(self, now: datetime) -> datetime | None:
        """Claim the stretch since the last sweep of any process, up to ``now``: its start, or
        None when there is nothing to sweep (first sweep ever; swept already)."""
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
        """Notify open alerts covered by silences that ended since the last sweep (and not
        covered by another silence still in force). Returns how many were notified.

        The last sweep is any process's (the mark is in the database): with several workers
        each ended silence is notified by one of them, and silences that ended while no
        process was running are notified at the first sweep after a start."""
        now = self.clock()
        since = self.store.claim_sweep(now)
        if since is None:
            return 0
        ended = self.store.in_force_between(since, now)
        if not ended:
            return 0
        self.refresh()
        count = 0
        for alert in open_alerts:
            if any(s.covers(alert) for s in ended) and not self.is_silenced(alert):
                notify(alert)
                count += 1
        return count


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
