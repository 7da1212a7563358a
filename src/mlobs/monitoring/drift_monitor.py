"""Live drift monitoring: every prediction counted into its model's window; windows shared by all
processes through a ``WindowStore``; each closed window evaluated once, stored, exported as
metrics and handed to the listeners (the alert manager).

Windows close by size (``window_size`` rows) and/or by time (``window_seconds`` after opening);
a window below ``min_samples`` rows gives no verdict (every feature ``insufficient_data``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlobs.errors import Conflict, NotFound
from mlobs.monitoring.drift_detector import (
    CategoricalMethod,
    DriftDetector,
    DriftReport,
    NumericMethod,
)
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.ports import DriftListener, WindowStore
from mlobs.monitoring.profiles import ReferenceProfile
from mlobs.monitoring.quality import QualityReport, QualityThresholds, assess
from mlobs.monitoring.records import DriftResult, WindowInfo
from mlobs.monitoring.windows import LiveWindow, WindowCounts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftConfig:
    """How live windows behave and what the detector calls drift."""

    window_size: int = 500
    window_seconds: float | None = None
    min_samples: int = 500
    check_min_samples: int = 100
    psi_threshold_warning: float = 0.1
    psi_threshold_critical: float = 0.2
    js_threshold_warning: float = 0.1
    js_threshold_critical: float = 0.2
    drift_share_threshold: float = 0.3
    closing_timeout: float = 60.0
    # A model without new rows in this process is looked at (window due by time, stale
    # windows, a profile replaced elsewhere) every this many seconds, not at every flush.
    idle_pass_seconds: float = 5.0
    numeric_method: NumericMethod = "psi"
    categorical_method: CategoricalMethod = "jensenshannon"
    quality: QualityThresholds = field(default_factory=QualityThresholds)

    def detector(self, profile: ReferenceProfile, min_samples: int) -> DriftDetector:
        return DriftDetector.from_profile(
            profile,
            psi_threshold_warning=self.psi_threshold_warning,
            psi_threshold_critical=self.psi_threshold_critical,
            drift_share_threshold=self.drift_share_threshold,
            js_threshold_warning=self.js_threshold_warning,
            js_threshold_critical=self.js_threshold_critical,
            min_samples=min_samples,
            numeric_method=self.numeric_method,
            categorical_method=self.categorical_method,
        )


def profile_version(profile: ReferenceProfile) -> str:
    """Creation time, then a content hash: versions order by age, so a process can tell whether
    the open window was counted on an older reference (discard it) or a newer one (reload)."""
    blob = json.dumps(profile.to_dict(), sort_keys=True).encode()
    return f"{profile.created_at}/{hashlib.sha256(blob).hexdigest()[:12]}"


@dataclass
class _ModelState:
    profile: ReferenceProfile
    version: str
    live: LiveWindow
    lock: threading.Lock = field(default_factory=threading.Lock)
    # When this process last looked at the model's windows, and last looked for stale ones.
    last_pass: datetime | None = None
    last_reclaim: datetime | None = None
    # When the open window last seen closes by time (None: not known, or no time limit).
    due_at: datetime | None = None


class DriftMonitor:
    def __init__(
        self,
        store: WindowStore,
        metrics: Metrics,
        config: DriftConfig,
        *,
        clock: Callable[[], datetime],
        listeners: Sequence[DriftListener] = (),
        reload_profile: Callable[[str], ReferenceProfile | None] = lambda name: None,
    ) -> None:
        self.store, self.metrics, self.config, self.clock = store, metrics, config, clock
        self.listeners = list(listeners)
        self.reload_profile = reload_profile
        self._models: dict[str, _ModelState] = {}

    # ------------------------------------------------------------------ profiles

    def set_profile(self, profile: ReferenceProfile) -> None:
        """Use ``profile`` for its model from now on (counts on the old bins are dropped)."""
        self._models[profile.model_name] = _ModelState(
            profile, profile_version(profile), LiveWindow(profile)
        )

    def profile(self, model_name: str) -> ReferenceProfile:
        state = self._models.get(model_name)
        if state is None:
            raise NotFound("reference profile", model_name)
        return state.profile

    @property
    def model_names(self) -> list[str]:
        return list(self._models)

    # ------------------------------------------------------------------ live traffic

    def observe(self, model_name: str, record: Mapping[str, Any], output: float | None) -> None:
        """Count one served prediction (hot path: a few microseconds)."""
        state = self._models.get(model_name)
        if state is None:
            return
        with state.lock:
            state.live.add(record, output)

    def observe_many(
        self, model_name: str, records: Sequence[Mapping[str, Any]], outputs: Sequence[float]
    ) -> None:
        state = self._models.get(model_name)
        if state is None:
            return
        with state.lock:
            for record, output in zip(records, outputs, strict=True):
                state.live.add(record, output)

    def flush(self) -> list[DriftResult]:
        """Push this process's counts to the shared windows, close the windows that are due, and
        evaluate those this call closed (or reclaimed: a window whose evaluator failed is taken
        up again after ``closing_timeout`` seconds). Returns the results it produced."""
        results = []
        failures = []
        for model_name in list(self._models):
            try:
                results.extend(self._flush_model(model_name))
            except Exception as exc:  # one model's failure does not stop the others
                failures.append(exc)
        if failures:
            raise failures[0]
        return results

    def _flush_model(self, model_name: str) -> list[DriftResult]:
        # Each look at the shared windows is a few queries with the GIL held most of the time:
        # a model this process has no new rows for is looked at every ``idle_pass_seconds``
        # (or when its window is due by time), not at every flush.
        now = self.clock()
        state = self._models[model_name]
        with state.lock:
            pending = state.live.n_rows
        if not pending and not self._pass_due(state, now):
            return []
        state.last_pass = now
        state, known = self._align(model_name, state)
        with state.lock:
            delta = state.live.take()
        window: WindowInfo | None
        if delta.n_rows:
            try:
                window = self.store.add_counts(model_name, state.version, delta, now, known=known)
            except Exception:
                with state.lock:  # keep the counts for the next flush
                    state.live.restore(delta)
                raise
            if window is None:
                log.warning(
                    "%s: open window was counted on another reference profile; "
                    "%d rows of this process dropped from drift counts",
                    model_name, delta.n_rows,
                )  # fmt: skip
                return []
        else:
            window = known
        to_evaluate: list[int] = []
        timeout = timedelta(seconds=self.config.closing_timeout)
        if state.last_reclaim is None or now - state.last_reclaim >= timeout / 4:
            state.last_reclaim = now
            to_evaluate = self.store.reclaim_stale(model_name, now - timeout, now)
        state.due_at = None
        if window is not None and window.profile_version == state.version:
            self.metrics.window_rows.labels(model_name).set(window.n_rows)
            if self._due(window, now) and self.store.close(window.id, now):
                to_evaluate.append(window.id)
            elif self.config.window_seconds:
                state.due_at = window.opened_at + timedelta(seconds=self.config.window_seconds)
        results = []
        for window_id in to_evaluate:
            result = self._evaluate_closed(model_name, state, window_id, now)
            if result is not None:
                results.append(result)
        return results

    def _pass_due(self, state: _ModelState, now: datetime) -> bool:
        if state.last_pass is None or state.due_at is not None and now >= state.due_at:
            return True
        return now - state.last_pass >= timedelta(seconds=self.config.idle_pass_seconds)

    def _align(self, model_name: str, state: _ModelState) -> tuple[_ModelState, WindowInfo | None]:
        """Make this process and the open window agree on the reference profile: a window
        counted on an older profile is discarded (its bins no longer apply); when the window is
        on a newer profile (another process replaced it), this process reloads the profile.
        Returns the state to use and the open window when it is on that state's profile."""
        open_window = self.store.open_window(model_name)
        if open_window is None or open_window.profile_version == state.version:
            return state, open_window
        if open_window.profile_version < state.version:
            if self.store.discard(open_window.id, self.clock()):
                log.info("%s: window %d discarded: counted on an older reference profile",
                         model_name, open_window.id)  # fmt: skip
            return state, None
        fresh = self.reload_profile(model_name)
        if fresh is not None and profile_version(fresh) != state.version:
            log.info("%s: reference profile replaced elsewhere; reloaded", model_name)
            self.set_profile(fresh)
            fresh_state = self._models[model_name]
            fresh_state.last_pass = state.last_pass
            known = open_window if open_window.profile_version == fresh_state.version else None
            return fresh_state, known
        return state, None

    def _live_min(self, counts: WindowCounts) -> int:
        """The per-feature minimum for a live window: a window below ``min_samples`` rows gives
        no verdict at all (every feature needs more values than it has); a window with enough
        rows scores each feature with at least ``check_min_samples`` non-missing values, so a
        feature with a few missing values is not left out of a window that just made it."""
        if counts.n_rows < self.config.min_samples:
            return self.config.min_samples
        return min(self.config.check_min_samples, self.config.min_samples)

    def _due(self, window: WindowInfo, now: datetime) -> bool:
        if window.n_rows >= self.config.window_size:
            return True
        seconds = self.config.window_seconds
        return bool(seconds) and window.opened_at + timedelta(seconds=seconds or 0) <= now

    def _evaluate_closed(
        self, model_name: str, state: _ModelState, window_id: int, now: datetime
    ) -> DriftResult | None:
        counts = self.store.read_counts(window_id, state.profile)
        report = self.config.detector(state.profile, self._live_min(counts)).evaluate(counts)
        quality = assess(state.profile, counts, self.config.quality)
        result = self._result(model_name, "live", window_id, now, report, quality)
        if not self.store.save_result(result):
            return None  # evaluated meanwhile by the process it was first handed to
        self._export(model_name, "live", report, quality)
        self.metrics.windows_evaluated.labels(model_name, report.status).inc()
        self._notify(model_name, "live", report, quality)
        log.info(
            "%s window %d: %s, drift share %.2f over %d rows",
            model_name, window_id, report.status, report.drift_share, report.n_rows,
        )  # fmt: skip
        return result

    # ------------------------------------------------------------------ on demand

    def check(
        self, model_name: str, frame: pd.DataFrame, predictions: np.ndarray | None
    ) -> tuple[DriftReport, QualityReport]:
        """Drift and quality of posted rows (``dataset_name="request"``)."""
        profile = self.profile(model_name)
        counts = WindowCounts.from_frame(profile, frame, predictions)
        report = self.config.detector(profile, self.config.check_min_samples).evaluate(counts)
        quality = assess(profile, counts, self.config.quality)
        self.store.save_result(
            self._result(model_name, "request", None, self.clock(), report, quality)
        )
        self._export(model_name, "request", report, quality)
        self._notify(model_name, "request", report, quality)
        return report, quality

    def quality(self, model_name: str, frame: pd.DataFrame) -> QualityReport:
        profile = self.profile(model_name)
        quality = assess(profile, WindowCounts.from_frame(profile, frame), self.config.quality)
        self.metrics.missing_share.labels(model_name, "request").set(quality.missing_share)
        self.metrics.duplicate_rows.labels(model_name, "request").set(quality.duplicate_rows)
        for listener in self.listeners:
            listener.on_quality(model_name, "request", quality)
        return quality

    def check_live(self, model_name: str) -> tuple[DriftReport, QualityReport, WindowInfo]:
        """Drift of the open live window so far (flushing this process's counts first)."""
        state = self._models.get(model_name)
        if state is None:
            raise NotFound("reference profile", model_name)
        self.flush()
        window = self.store.open_window(model_name)
        if window is None or window.n_rows == 0 or window.profile_version != state.version:
            raise Conflict(
                f"no live window for {model_name!r} yet: send predictions, or post records"
            )
        counts = self.store.read_counts(window.id, state.profile)
        report = self.config.detector(state.profile, self._live_min(counts)).evaluate(counts)
        return report, assess(state.profile, counts, self.config.quality), window

    def status(self, model_name: str) -> dict[str, Any]:
        state = self._models.get(model_name)
        if state is None:
            raise NotFound("reference profile", model_name)
        window = self.store.open_window(model_name)
        with state.lock:
            unflushed = state.live.n_rows
        last = self.store.history(model_name, "live", 1)
        p = state.profile
        return {
            "model_name": model_name,
            "reference": {
                "model_version": p.model_version,
                "profile_version": state.version,
                "rows": p.rows,
                "created_at": p.created_at,
                "n_bins": p.n_bins,
                "features": {n: f.kind for n, f in p.features.items()},
            },
            "thresholds": self.config.detector(p, self.config.min_samples).thresholds,
            "window": {
                "size": self.config.window_size,
                "seconds": self.config.window_seconds,
                "min_samples": self.config.min_samples,
                "rows": (window.n_rows if window else 0) + unflushed,
                "opened_at": window.opened_at.isoformat() if window else None,
                "fill": min(
                    1.0, ((window.n_rows if window else 0) + unflushed) / self.config.window_size
                ),
            },  # fmt: skip
            "last_result": _result_dict(last[0]) if last else None,
        }

    def history(self, model_name: str, limit: int = 50) -> list[dict[str, Any]]:
        self.profile(model_name)
        return [_result_dict(r) for r in self.store.history(model_name, "live", limit)]

    # ------------------------------------------------------------------ helpers

    def _result(
        self,
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

    def _export(
        self, model_name: str, dataset_name: str, report: DriftReport, quality: QualityReport
    ) -> None:
        m = self.metrics
        m.missing_share.labels(model_name, dataset_name).set(quality.missing_share)
        m.duplicate_rows.labels(model_name, dataset_name).set(quality.duplicate_rows)
        if report.status == "insufficient_data":
            return
        m.dataset_drift.labels(model_name, dataset_name).set(int(report.dataset_drift))
        if dataset_name != "live":
            return
        m.drift_share.labels(model_name).set(report.drift_share)
        m.drifted_features.labels(model_name).set(report.drifted_features_count)
        for name, f in report.features.items():
            if f.score is not None:
                m.drift_score.labels(model_name, name).set(f.score)
        if report.prediction is not None and report.prediction.score is not None:
            m.prediction_drift.labels(model_name).set(report.prediction.score)

    def _notify(
        self, model_name: str, dataset_name: str, report: DriftReport, quality: QualityReport
    ) -> None:
        for listener in self.listeners:
            try:
                listener.on_drift(model_name, dataset_name, report)
                listener.on_quality(model_name, dataset_name, quality)
            except Exception:  # a failing listener must not stop monitoring
                log.exception("drift listener %r failed", listener)

    # ------------------------------------------------------------------ for display (read-only)

    def window_view(self, model_name: str, which: str = "auto") -> WindowView | None:
        """The counts and verdict of a window to draw against the reference: ``closed`` (the last
        closed live window), ``open`` (the open one, as of the last push of counts), or ``auto``
        (the last closed, else the open). None when there is no such window. A closed window
        counted on a replaced reference profile is skipped: its counts do not fit today's bins.
        Reads only; the open window's verdict is computed, not stored."""
        state = self._models.get(model_name)
        if state is None:
            raise NotFound("reference profile", model_name)
        p = state.profile
        if which in ("auto", "closed"):
            last = self.store.history(model_name, "live", 1)
            r = last[0] if last else None
            if r is not None and r.window_id is not None and _fits(r.report, p):
                counts = self.store.read_counts(r.window_id, p)
                return WindowView("closed", r.window_id, r.n_rows, r.created_at, counts, r.report)
        if which in ("auto", "open"):
            w = self.store.open_window(model_name)
            if w is not None and w.n_rows and w.profile_version == state.version:
                counts = self.store.read_counts(w.id, p)
                report = self.config.detector(p, self._live_min(counts)).evaluate(counts)
                return WindowView("open", w.id, counts.n_rows, None, counts, report.to_dict())
        return None


def _result_dict(r: DriftResult) -> dict[str, Any]:
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
    }


@dataclass(frozen=True)
class WindowView:
    """A window as ``DriftMonitor.window_view`` reads it: counts over the profile's bins and the
    verdict as a report dict (``DriftReport.to_dict()``)."""

    kind: str  # "closed" or "open"
    window_id: int
    n_rows: int
    evaluated_at: datetime | None
    counts: WindowCounts
    report: Mapping[str, Any]


def _fits(report: Mapping[str, Any], profile: ReferenceProfile) -> bool:
    """Whether a stored report was made on ``profile``'s bins (same labels and reference)."""
    features = report.get("features") or {}
    for name, f in profile.features.items():
        r = features.get(name)
        if r is None or r.get("bins") != f.bin_labels():
            return False
        ref = r.get("reference") or []
        if len(ref) != len(f.proportions) or any(
            abs(a - b) > 1e-9 for a, b in zip(ref, f.proportions, strict=True)
        ):
            return False
    return True
