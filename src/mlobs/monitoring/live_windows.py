"""The shared live windows' side of drift monitoring: take a process's counts into the model's
open window, close the windows that are due, and evaluate those closed (drift, quality, the
stored result, the listeners: the alert manager).

``WindowKeeper`` does this wherever it runs: in the serving process (called directly), or in a
child process of it (``mlobs.storage.window_process``), where its milliseconds of statistics and
queries with the GIL held do not stall requests. Either way the serving process hands it a
``Push`` per model and gets a ``PushOutcome`` back, which travels as JSON between processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mlobs.monitoring.ports import DriftListener, WindowStore
from mlobs.monitoring.profiles import ReferenceProfile
from mlobs.monitoring.quality import assess
from mlobs.monitoring.records import DriftResult, WindowInfo
from mlobs.monitoring.windows import WindowCounts

if TYPE_CHECKING:
    from mlobs.monitoring.drift_detector import DriftReport
    from mlobs.monitoring.drift_monitor import DriftConfig
    from mlobs.monitoring.quality import QualityReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Push:
    """One model's counts since the last push, on the reference profile ``version``. Empty
    counts (no rows) still look at the window: it may be due by time, or stale."""

    model_name: str
    version: str
    profile: ReferenceProfile
    delta: WindowCounts


@dataclass
class PushOutcome:
    """What became of a push.

    ``added``: the counts are in the shared window (or there were none). ``error``: what failed;
    with ``added`` False the caller keeps the counts for the next push, with ``added`` True the
    counts are in and only the closing or evaluation failed (a window left closing is taken up
    again after the closing timeout). ``newer_version``: the open window is counted on a newer
    reference profile than the push (another process replaced it): the caller reloads the
    profile, and its counts on the old bins are dropped. ``window_rows``: the open window's rows
    after the push; ``due_at``: when it closes by time; ``results``: the windows this push
    closed (or reclaimed) and evaluated.
    """

    model_name: str
    added: bool = True
    error: str | None = None
    newer_version: str | None = None
    window_rows: int | None = None
    due_at: datetime | None = None
    results: list[DriftResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "added": self.added,
            "error": self.error,
            "newer_version": self.newer_version,
            "window_rows": self.window_rows,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "results": [result_to_dict(r) for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PushOutcome:
        due = d.get("due_at")
        return cls(
            model_name=d["model_name"],
            added=bool(d["added"]),
            error=d.get("error"),
            newer_version=d.get("newer_version"),
            window_rows=d.get("window_rows"),
            due_at=datetime.fromisoformat(due) if due else None,
            results=[result_from_dict(r) for r in d.get("results", ())],
        )


def result_to_dict(r: DriftResult) -> dict[str, Any]:
    return {
        "model_name": r.model_name,
        "dataset_name": r.dataset_name,
        "window_id": r.window_id,
        "created_at": r.created_at.isoformat(),
        "n_rows": r.n_rows,
        "status": r.status,
        "dataset_drift": r.dataset_drift,
        "drift_share": r.drift_share,
        "drifted_features_count": r.drifted_features_count,
        "report": r.report,
        "quality": r.quality,
        "window_start": r.window_start.isoformat() if r.window_start else None,
        "window_end": r.window_end.isoformat() if r.window_end else None,
    }


def result_from_dict(d: Mapping[str, Any]) -> DriftResult:
    return DriftResult(
        model_name=d["model_name"],
        dataset_name=d["dataset_name"],
        window_id=d["window_id"],
        created_at=datetime.fromisoformat(d["created_at"]),
        n_rows=int(d["n_rows"]),
        status=d["status"],
        dataset_drift=bool(d["dataset_drift"]),
        drift_share=float(d["drift_share"]),
        drifted_features_count=int(d["drifted_features_count"]),
        report=d["report"],
        quality=d.get("quality"),
        window_start=datetime.fromisoformat(d["window_start"]) if d.get("window_start") else None,
        window_end=datetime.fromisoformat(d["window_end"]) if d.get("window_end") else None,
    )


def counts_to_dict(c: WindowCounts) -> dict[str, Any]:
    return {
        "n_rows": c.n_rows,
        "counts": {k: v.tolist() for k, v in c.counts.items()},
        "missing": c.missing,
        "duplicates": c.duplicates,
        "out_of_range": c.out_of_range,
    }


def counts_from_dict(d: Mapping[str, Any]) -> WindowCounts:
    return WindowCounts(
        n_rows=int(d["n_rows"]),
        counts={k: np.asarray(v, dtype=np.int64) for k, v in d["counts"].items()},
        missing={k: int(v) for k, v in d["missing"].items()},
        duplicates=int(d["duplicates"]),
        out_of_range={k: int(v) for k, v in d["out_of_range"].items()},
    )


def drift_result(
    model_name: str,
    dataset_name: str,
    window_id: int | None,
    now: datetime,
    report: DriftReport,
    quality: QualityReport,
) -> DriftResult:
    return DriftResult(
        model_name=model_name,
        dataset_name=dataset_name,
        window_id=window_id,
        created_at=now,
        n_rows=report.n_rows,
        status=report.status,
        dataset_drift=report.dataset_drift,
        drift_share=report.drift_share,
        drifted_features_count=report.drifted_features_count,
        report=report.to_dict(),
        quality=quality.to_dict(),
    )


class PushAnswerLost(Exception):
    """The pushes were handed over but no outcome came back: their counts may be in the shared
    windows or not. The caller drops them (counting them again could count them twice)."""


class LiveWindows(Protocol):
    """Where a serving process's counts go: ``push`` returns one outcome per push, in order.
    Raises ``PushAnswerLost`` when the outcome is unknown, any other exception when the pushes
    were not handed over (their counts are kept for the next push)."""

    def push(self, pushes: Sequence[Push]) -> list[PushOutcome]: ...


class WindowKeeper:
    """Counts into shared windows, closes and evaluates them, tells the listeners."""

    def __init__(
        self,
        store: WindowStore,
        config: DriftConfig,
        *,
        clock: Callable[[], datetime],
        listeners: Sequence[DriftListener] = (),
    ) -> None:
        self.store, self.config, self.clock = store, config, clock
        # A list the caller may append to after construction (the runtime wires the alert
        # manager in after building the drift monitor).
        self.listeners = listeners if isinstance(listeners, list) else list(listeners)
        self._last_reclaim: dict[str, datetime] = {}

    def push(self, pushes: Sequence[Push]) -> list[PushOutcome]:
        return [self.push_one(p) for p in pushes]

    def push_one(self, p: Push) -> PushOutcome:
        """Never raises: a failure is reported in the outcome (see ``PushOutcome``)."""
        now = self.clock()
        try:
            known, newer = self._align(p, now)
            if newer is not None:
                return PushOutcome(p.model_name, added=False, newer_version=newer)
            window: WindowInfo | None = known
            if p.delta.n_rows:
                window = self.store.add_counts(p.model_name, p.version, p.delta, now, known=known)
                if window is None:  # a window on another profile opened meanwhile
                    return PushOutcome(p.model_name, added=False)
        except Exception as exc:  # nothing was added: the caller keeps the counts
            return PushOutcome(p.model_name, added=False, error=describe(exc))
        out = PushOutcome(p.model_name)
        try:
            self._close_and_evaluate(p, window, now, out)
        except Exception as exc:  # the counts are in; the window is taken up again later
            out.error = describe(exc)
        return out

    def _align(self, p: Push, now: datetime) -> tuple[WindowInfo | None, str | None]:
        """The open window when it is on the push's profile, else None; and the open window's
        version when it is newer. A window counted on an older profile is discarded (its bins no
        longer apply)."""
        open_window = self.store.open_window(p.model_name)
        if open_window is None or open_window.profile_version == p.version:
            return open_window, None
        if open_window.profile_version < p.version:
            if self.store.discard(open_window.id, now):
                log.info("%s: window %d discarded: counted on an older reference profile",
                         p.model_name, open_window.id)  # fmt: skip
            return None, None
        return None, open_window.profile_version

    def _close_and_evaluate(
        self, p: Push, window: WindowInfo | None, now: datetime, out: PushOutcome
    ) -> None:
        to_evaluate: list[int] = []
        timeout = timedelta(seconds=self.config.closing_timeout)
        last = self._last_reclaim.get(p.model_name)
        if last is None or now - last >= timeout / 4:
            self._last_reclaim[p.model_name] = now
            to_evaluate = self.store.reclaim_stale(p.model_name, now - timeout, now)
        if window is not None and window.profile_version == p.version:
            out.window_rows = window.n_rows
            if self._due(window, now) and self.store.close(window.id, now):
                to_evaluate.append(window.id)
            elif self.config.window_seconds:
                out.due_at = window.opened_at + timedelta(seconds=self.config.window_seconds)
        for window_id in to_evaluate:
            result = self._evaluate_closed(p, window_id, now)
            if result is not None:
                out.results.append(result)

    def _due(self, window: WindowInfo, now: datetime) -> bool:
        if window.n_rows >= self.config.window_size:
            return True
        seconds = self.config.window_seconds
        return bool(seconds) and window.opened_at + timedelta(seconds=seconds or 0) <= now

    def _evaluate_closed(self, p: Push, window_id: int, now: datetime) -> DriftResult | None:
        counts = self.store.read_counts(window_id, p.profile)
        report = self.config.detector(p.profile, self.config.live_min(counts)).evaluate(counts)
        quality = assess(p.profile, counts, self.config.quality)
        result = drift_result(p.model_name, "live", window_id, now, report, quality)
        if not self.store.save_result(result):
            return None  # evaluated meanwhile by the process it was first handed to
        for listener in self.listeners:
            try:
                listener.on_drift(p.model_name, "live", report)
                listener.on_quality(p.model_name, "live", quality)
            except Exception:  # a failing listener must not stop monitoring
                log.exception("drift listener %r failed", listener)
        log.info(
            "%s window %d: %s, drift share %.2f over %d rows",
            p.model_name, window_id, report.status, report.drift_share, report.n_rows,
        )  # fmt: skip
        return result


def describe(exc: BaseException) -> str:
    """An error as an outcome carries it: its type, then its message."""
    return f"{type(exc).__name__}: {exc}"
