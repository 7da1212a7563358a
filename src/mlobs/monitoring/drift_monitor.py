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

from mlobs.errors import Conflict, NotFound, Unavailable
from mlobs.monitoring.drift_detector import (
    CategoricalMethod,
    DriftDetector,
    DriftReport,
    NumericMethod,
)
from mlobs.monitoring.live_windows import (
    LiveWindows,
    Push,
    PushAnswerLost,
    PushOutcome,
    WindowKeeper,
    drift_result,
    result_to_dict,
)
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.ports import DriftListener, WindowStore
from mlobs.monitoring.profiles import ReferenceProfile
from mlobs.monitoring.quality import QualityReport, QualityThresholds, assess
from mlobs.monitoring.records import DriftResult, WindowInfo
from mlobs.monitoring.windows import LiveWindow, WindowCounts

log = logging.getLogger(__name__)

# How long a live check waits for a push in progress before answering 503.
CHECK_WAIT_SECONDS = 10.0


class DriftFlushError(Unavailable):
    """Some model's counts could not be pushed or its window not evaluated (the counts that
    were not added are kept for the next flush): the database, or the process that works on
    the windows, cannot answer now (a 503 to a live check). The message names the models and
    the kind of error; ``details`` has the whole text, for the log."""

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        short = "; ".join(f"{model}: {error.split(':', 1)[0]}" for model, error in failures)
        super().__init__("drift windows", short)
        self.details = "; ".join(f"{model}: {error}" for model, error in failures)


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

    def live_min(self, counts: WindowCounts) -> int:
        """The per-feature minimum for a live window: a window below ``min_samples`` rows gives
        no verdict at all (every feature needs more values than it has); a window with enough
        rows scores each feature with at least ``check_min_samples`` non-missing values, so a
        feature with a few missing values is not left out of a window that just made it."""
        if counts.n_rows < self.min_samples:
            return self.min_samples
        return min(self.check_min_samples, self.min_samples)


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
    # When this process last looked at the model's windows.
    last_pass: datetime | None = None
    # When the open window last seen closes by time (None: not known, or no time limit).
    due_at: datetime | None = None


class DriftMonitor:
    """Counts every served prediction into its model's ``LiveWindow`` (the hot path), and on
    ``flush`` hands the counts to the shared windows (``windows``: in this process by default,
    or a child process), then exports what came back as metrics. Also answers the on-demand
    checks and the status reads."""

    def __init__(
        self,
        store: WindowStore,
        metrics: Metrics,
        config: DriftConfig,
        *,
        clock: Callable[[], datetime],
        listeners: Sequence[DriftListener] = (),
        reload_profile: Callable[[str], ReferenceProfile | None] = lambda name: None,
        windows: LiveWindows | None = None,
    ) -> None:
        self.store, self.metrics, self.config, self.clock = store, metrics, config, clock
        self.listeners = list(listeners)
        self.reload_profile = reload_profile
        # In this process, the keeper tells the same listeners (the list, not a copy: the alert
        # manager is appended after construction).
        self.windows: LiveWindows = windows or WindowKeeper(
            store, config, clock=clock, listeners=self.listeners
        )
        self._models: dict[str, _ModelState] = {}
        self._flush_lock = threading.Lock()

    # ------------------------------------------------------------------ profiles

    def set_profile(self, profile: ReferenceProfile) -> None:
        """Use ``profile`` for its model from now on (counts on the old bins are dropped)."""
        self._models[profile.model_name] = _ModelState(
            profile, profile_version(profile), LiveWindow(profile)
        )

    def remove_profile(self, model_name: str) -> None:
        """Stop watching a model (removed from the catalogue); its stored history stays."""
        self._models = {k: v for k, v in self._models.items() if k != model_name}

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

    def flush(self, *, wait: float | None = None) -> list[DriftResult]:
        """Hand this process's counts to the shared windows, which close the windows that are
        due and evaluate those closed (or reclaimed: a window whose evaluator failed is taken up
        again after ``closing_timeout`` seconds); export the results. Counts that could not be
        added are kept for the next flush. Returns the results; raises ``DriftFlushError`` after
        handling every model when some model's push failed.

        One flush at a time: a live check that flushes first waits for the background flush in
        progress, so the counts it took are in the shared window when the check reads it; with
        ``wait``, at most that many seconds (then ``Unavailable``: a request must not queue
        behind a child that is timing out)."""
        if not self._flush_lock.acquire(timeout=-1 if wait is None else wait):
            raise Unavailable("drift windows", "a push of live counts is taking too long")
        try:
            return self._flush()
        finally:
            self._flush_lock.release()

    def _flush(self) -> list[DriftResult]:
        now = self.clock()
        pushes: list[Push] = []
        states: list[_ModelState] = []
        for state in list(self._models.values()):
            # A look at the shared windows costs queries: a model this process has no new rows
            # for is looked at every ``idle_pass_seconds`` (or when its window is due by time),
            # not at every flush.
            with state.lock:
                if not state.live.n_rows and not self._pass_due(state, now):
                    continue
                delta = state.live.take()
            state.last_pass = now
            pushes.append(Push(state.profile.model_name, state.version, state.profile, delta))
            states.append(state)
        if not pushes:
            return []
        try:
            outcomes = self.windows.push(pushes)
        except Exception as exc:
            lost = isinstance(exc, PushAnswerLost)
            for p, state in zip(pushes, states, strict=True):
                if not lost:  # not handed over: every count stays here
                    self._restore(state, p.delta)
                elif p.delta.n_rows:  # maybe counted already: never count them twice
                    log.warning("%s: no answer to a push; %d rows dropped from drift counts",
                                p.model_name, p.delta.n_rows)  # fmt: skip
            raise DriftFlushError(
                [(p.model_name, f"{type(exc).__name__}: {exc}") for p in pushes]
            ) from exc
        results: list[DriftResult] = []
        failures: list[tuple[str, str]] = []
        for p, state, out in zip(pushes, states, outcomes, strict=True):
            if out.error is not None:
                failures.append((p.model_name, out.error))
            if not out.added:
                if out.error is not None:
                    self._restore(state, p.delta)
                elif p.delta.n_rows:
                    log.warning(
                        "%s: open window was counted on another reference profile; "
                        "%d rows of this process dropped from drift counts",
                        p.model_name, p.delta.n_rows,
                    )  # fmt: skip
            try:  # one model's trouble must not keep the others' outcomes from being handled
                self._handle(p, state, out, results)
            except Exception as exc:
                failures.append((p.model_name, f"{type(exc).__name__}: {exc}"))
        if failures:
            raise DriftFlushError(failures)
        return results

    def _handle(
        self, p: Push, state: _ModelState, out: PushOutcome, results: list[DriftResult]
    ) -> None:
        state.due_at = out.due_at
        if out.window_rows is not None:
            self.metrics.window_rows.labels(p.model_name).set(out.window_rows)
        for result in out.results:
            self._export(result.model_name, "live", result.report, result.quality or {})
            self.metrics.windows_evaluated.labels(result.model_name, result.status).inc()
            results.append(result)
        if out.newer_version is not None:
            self._reload(p.model_name, state)

    def _restore(self, state: _ModelState, delta: WindowCounts) -> None:
        """Keep counts whose push failed for the next flush (unless the profile was replaced
        meanwhile: they were counted on bins that no longer apply)."""
        if self._models.get(state.profile.model_name) is state and delta.n_rows:
            with state.lock:
                state.live.restore(delta)

    def _reload(self, model_name: str, state: _ModelState) -> None:
        """The open window is counted on a newer reference profile: another process replaced
        it (and saved it where ``reload_profile`` reads)."""
        if self._models.get(model_name) is not state:
            return  # replaced here meanwhile (a profile posted to this process)
        fresh = self.reload_profile(model_name)
        if fresh is not None and profile_version(fresh) != state.version:
            log.info("%s: reference profile replaced elsewhere; reloaded", model_name)
            self.set_profile(fresh)
            self._models[model_name].last_pass = state.last_pass

    def _pass_due(self, state: _ModelState, now: datetime) -> bool:
        if state.last_pass is None or state.due_at is not None and now >= state.due_at:
            return True
        return now - state.last_pass >= timedelta(seconds=self.config.idle_pass_seconds)

    # ------------------------------------------------------------------ on demand

    def check(
        self, model_name: str, frame: pd.DataFrame, predictions: np.ndarray | None
    ) -> tuple[DriftReport, QualityReport]:
        """Drift and quality of posted rows (``dataset_name="request"``)."""
        profile = self.profile(model_name)
        counts = WindowCounts.from_frame(profile, frame, predictions)
        report = self.config.detector(profile, self.config.check_min_samples).evaluate(counts)
        quality = assess(profile, counts, self.config.quality)
        result = drift_result(model_name, "request", None, self.clock(), report, quality)
        self.store.save_result(result)
        self._export(model_name, "request", result.report, result.quality or {})
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
        self.flush(wait=CHECK_WAIT_SECONDS)
        window = self.store.open_window(model_name)
        if window is None or window.n_rows == 0 or window.profile_version != state.version:
            raise Conflict(
                f"no live window for {model_name!r} yet: send predictions, or post records"
            )
        counts = self.store.read_counts(window.id, state.profile)
        report = self.config.detector(state.profile, self.config.live_min(counts)).evaluate(counts)
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
            "last_result": result_to_dict(last[0]) if last else None,
        }

    def history(self, model_name: str, limit: int = 50) -> list[dict[str, Any]]:
        self.profile(model_name)
        results = self.store.history(model_name, ("live", "backfill"), limit)
        return [result_to_dict(r) for r in results]

    # ------------------------------------------------------------------ helpers

    def _export(
        self,
        model_name: str,
        dataset_name: str,
        report: Mapping[str, Any],
        quality: Mapping[str, Any],
    ) -> None:
        """Set the gauges from a verdict (``DriftReport.to_dict()`` and
        ``QualityReport.to_dict()``: a live window's may come from another process)."""
        m = self.metrics
        if quality:
            m.missing_share.labels(model_name, dataset_name).set(quality["missing_share"])
            m.duplicate_rows.labels(model_name, dataset_name).set(quality["duplicate_rows"])
        if report["status"] == "insufficient_data":
            return
        m.dataset_drift.labels(model_name, dataset_name).set(int(report["dataset_drift"]))
        if dataset_name != "live":
            return
        m.drift_share.labels(model_name).set(report["drift_share"])
        m.drifted_features.labels(model_name).set(report["drifted_features_count"])
        for name, f in report["features"].items():
            if f["score"] is not None:
                m.drift_score.labels(model_name, name).set(f["score"])
        prediction = report.get("prediction")
        if prediction is not None and prediction["score"] is not None:
            m.prediction_drift.labels(model_name).set(prediction["score"])

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
                report = self.config.detector(p, self.config.live_min(counts)).evaluate(counts)
                return WindowView("open", w.id, counts.n_rows, None, counts, report.to_dict())
        return None


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
