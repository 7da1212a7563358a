"""What one app instance runs on, built by ``create_app`` and torn down by its lifespan."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from mlobs.api.bodies import ModelBodies
from mlobs.config import Settings
from mlobs.models.artifacts import catalog_signature, swap_in_progress
from mlobs.models.registry import ModelRegistry
from mlobs.monitoring.alerts import (
    LOWER_IS_BETTER,
    Alert,
    AlertFilter,
    AlertManager,
    AlertRules,
    task_performance_rule,
)
from mlobs.monitoring.drift_monitor import DriftConfig, DriftFlushError, DriftMonitor
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.notifications import Notifier
from mlobs.monitoring.performance import PerformanceConfig, PerformanceMonitor
from mlobs.monitoring.profiles import load_profile
from mlobs.monitoring.records import PredictionRecord
from mlobs.monitoring.service import PredictionService, utcnow
from mlobs.monitoring.silences import Silencer
from mlobs.storage.alert_repository import AlertRepository
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.drift_repository import DriftRepository
from mlobs.storage.feedback_repository import FeedbackRepository
from mlobs.storage.insert_process import InsertProcess, OffProcessStore
from mlobs.storage.kserve_repository import KServeHalves
from mlobs.storage.model_catalog import recover
from mlobs.storage.prediction_log import PredictionLog
from mlobs.storage.repositories import PredictionRepository
from mlobs.storage.silence_repository import SilenceRepository
from mlobs.storage.spill import Spill, label_to_json
from mlobs.storage.window_process import WindowProcess

log = logging.getLogger(__name__)

LATENCY_EVERY = 15.0
RESEND_EVERY = 60.0


def _versions(models: ModelRegistry) -> dict[str, str]:
    """The version of each model of a catalogue: the loaded one's, else its manifest's."""
    out = {n: m.version or "" for n, m in models.manifests.items()}
    out.update({m.name: m.version for m in models})
    return out


def build_drift_config(settings: Settings) -> DriftConfig:
    """What the detector calls drift and how live windows behave, from the settings (the
    service and a backfill judge by the same)."""
    return DriftConfig(
        window_size=settings.drift_window_size,
        window_seconds=settings.drift_window_seconds or None,
        min_samples=settings.drift_min_samples,
        check_min_samples=settings.drift_check_min_samples,
        psi_threshold_warning=settings.psi_threshold_warning,
        psi_threshold_critical=settings.psi_threshold_critical,
        js_threshold_warning=settings.js_threshold_warning,
        js_threshold_critical=settings.js_threshold_critical,
        drift_share_threshold=settings.drift_share_threshold,
        numeric_method=settings.drift_numeric_method,
        categorical_method=settings.drift_categorical_method,
    )


@dataclass
class Runtime:
    settings: Settings
    registry: CollectorRegistry
    metrics: Metrics
    engine: Engine
    predictions: PredictionRepository
    prediction_log: PredictionLog
    service: PredictionService
    drift: DriftMonitor
    alerts: AlertManager
    silences: Silencer
    notifier: Notifier
    performance: PerformanceMonitor
    bodies: ModelBodies
    kserve_halves: KServeHalves
    insert_process: InsertProcess | None = None
    window_process: WindowProcess | None = None
    models_ready: threading.Event = field(default_factory=threading.Event)
    startup_errors: list[str] = field(default_factory=list)
    profile_errors: dict[str, str] = field(default_factory=dict)
    # Called (from the loader thread) after the catalogue changed: the app remounts its routes.
    catalog_listeners: list[Callable[[ModelRegistry], None]] = field(default_factory=list)
    _catalog_seen: tuple[tuple[str, int, int, int], ...] = ()
    _adopting: threading.Lock = field(default_factory=threading.Lock)
    _checking: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _flusher: threading.Thread | None = None
    _latency_checked: float = 0.0
    _resent: float = 0.0
    _estimated: float = 0.0

    @classmethod
    def build(cls, settings: Settings, registry: CollectorRegistry) -> Runtime:
        metrics = Metrics(registry)
        engine = make_engine(settings.resolved_database_url)
        repo = PredictionRepository(engine)
        feedback_repo = FeedbackRepository(engine)
        spill = Spill(Path(settings.data_dir) / "spill")
        # An in-memory SQLite database exists only in this process: its log stays in a thread.
        url = make_url(settings.resolved_database_url)
        in_memory = url.get_backend_name() == "sqlite" and (
            not url.database or ":memory:" in url.database or url.query.get("mode") == "memory"
        )
        writer = (
            InsertProcess(settings.resolved_database_url)
            if settings.log_writer_process and not in_memory
            else None
        )
        plog = PredictionLog(
            OffProcessStore(repo, writer) if writer is not None else repo,
            metrics,
            queue_size=settings.log_queue_size,
            batch_size=settings.log_batch_size,
            flush_interval=settings.log_flush_interval,
            spill=spill,
            replay_labels=feedback_repo.add_replayed,
        )
        drift_config = build_drift_config(settings)
        rules = AlertRules(
            drift_warning_share=settings.alert_drift_warning_share,
            drift_critical_share=settings.alert_drift_critical_share,
            missing_share=settings.alert_missing_share,
            latency_p99_seconds=settings.alert_latency_p99_seconds,
            resolve_after=settings.alert_resolve_after,
        )
        per_model = (
            AlertManager.load_overrides(rules, settings.alert_rules_file)
            if settings.alert_rules_file
            else {}
        )
        alerts = AlertManager(
            AlertRepository(engine), metrics, rules, clock=utcnow, per_model=per_model
        )
        # Live windows' pushes, evaluation and alert rules off the serving process's GIL.
        window_process = (
            WindowProcess(
                settings.resolved_database_url, drift_config, rules, per_model, alerts.replay
            )
            if settings.drift_process and not in_memory
            else None
        )
        drift = DriftMonitor(
            DriftRepository(engine),
            metrics,
            drift_config,
            clock=utcnow,
            reload_profile=lambda name: load_profile(Path(settings.model_dir), name),
            windows=window_process,
        )
        drift.listeners.append(alerts)
        # The manifests are read now (the routes and request bodies come from them); the
        # artifacts load in the background once the app starts.
        catalog = ModelRegistry.catalog(Path(settings.model_dir))
        alerts.model_names = tuple(catalog.names)
        service = PredictionService(
            catalog,
            metrics,
            plog,
            drift=drift,
            latency_window=settings.alert_latency_window,
        )
        silencer = Silencer(SilenceRepository(engine), utcnow)
        notifier = Notifier.from_settings(
            webhook_urls=[u.strip() for u in settings.webhook_urls.split(",") if u.strip()],
            slack_url=settings.slack_webhook_url,
            alertmanager_url=settings.alertmanager_url,
            metrics=metrics,
            silenced=silencer.is_silenced,
            timeout=settings.notification_timeout,
        )
        alerts.listeners.append(notifier)
        performance = PerformanceMonitor(
            feedback_repo,
            metrics,
            clock=utcnow,
            models=lambda: service.models.observed,
            config=PerformanceConfig(
                window_size=settings.performance_window_size,
                min_labels=settings.performance_min_labels,
                estimate_window=settings.performance_estimate_window,
            ),
        )
        performance.listeners.append(alerts)
        return cls(
            settings, registry, metrics, engine, repo, plog, service, drift, alerts, silencer,
            notifier, performance, ModelBodies(catalog.manifests), KServeHalves(engine),
            insert_process=writer,
            window_process=window_process,
        )  # fmt: skip

    def open_alerts(self) -> list[Alert]:
        store = self.alerts.store
        return [
            a
            for state in ("active", "acknowledged")
            for a in store.list(AlertFilter(state=state, limit=10_000))[0]
        ]

    def _open_alerts_when_read(self) -> Iterator[Alert]:
        """The open alerts, queried on first iteration (not at all when nobody iterates)."""
        yield from self.open_alerts()

    def spill_labels(self, items: list[tuple[PredictionRecord, float]]) -> None:
        """Labels accepted while the database is away: to the spill, replayed when it returns.
        Raises OSError when the spill fails (the caller answers 503: nothing accepted)."""
        spill = self.prediction_log.spill
        if spill is None:
            raise OSError("no spill configured")
        labels = self.performance.labels_for(items)
        spill.append("label", [label_to_json(lab) for lab in labels])
        for lab in labels:
            self.metrics.spilled.labels("label", lab.model_name).inc()

    def clock(self) -> datetime:
        return self.service.clock()

    @property
    def models(self) -> ModelRegistry:
        return self.service.models

    def start(self) -> None:
        """Migrate the database, start the log writer, and load the models in the background so
        that liveness answers at once and readiness turns 200 when the models are in."""
        try:
            migrate(self.engine)
        except Exception as exc:  # the service still serves predictions without its database
            msg = f"database migration failed: {type(exc).__name__}: {exc}"
            log.error(msg)
            self.startup_errors.append(msg)
        self.alerts.init_metrics()
        try:
            self.alerts.rebuild_metrics()
        except Exception as exc:
            log.error("could not read open alerts: %s: %s", type(exc).__name__, exc)
        if self.insert_process is not None:
            self.insert_process.start()
        if self.window_process is not None:
            self.window_process.start()
        self.prediction_log.start()
        self.notifier.start()
        threading.Thread(target=self._load_models, name="model-loader", daemon=True).start()
        self._flusher = threading.Thread(target=self._flush_loop, name="drift-flush", daemon=True)
        self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.settings.drift_flush_interval):
            self.flush_drift()
            self.process_labels()

    def count_ingested(
        self,
        model_name: str,
        records: Sequence[PredictionRecord],
        *,
        duplicates: int,
        rejected: int,
    ) -> None:
        """Count predictions made elsewhere that the log took as new: metrics, and the live
        drift window (the probability, or a regressor's value, as the output)."""
        ingested = self.metrics.ingested
        ingested.labels(model_name, "accepted").inc(len(records))
        if duplicates:
            ingested.labels(model_name, "duplicate").inc(duplicates)
        if rejected:
            ingested.labels(model_name, "rejected").inc(rejected)
        manifest = self.models.manifests.get(model_name)
        regression = manifest is not None and manifest.task == "regression"
        value = self.metrics.value.labels(model_name)
        for r in records:
            output = r.probability if r.probability is not None else (
                r.prediction if regression else None
            )  # fmt: skip
            if output is not None:
                value.observe(output)
            self.drift.observe(model_name, r.features, output)

    def process_labels(self, full: bool | None = None) -> None:
        """Consume new labels (every pass: cheap when there are none); every
        ``performance_estimate_interval`` also a full evaluation pass and the label-free estimate."""
        now = time.monotonic()
        if full is None:
            full = now - self._estimated >= self.settings.performance_estimate_interval
        try:
            self.performance.process(full=full)
            if full:
                self._estimated = now
                self.performance.estimate_all()
        except Exception as exc:  # the database may be away; labels wait for the next pass
            log.warning("label processing failed: %s: %s", type(exc).__name__, exc)

    def flush_drift(self) -> None:
        try:
            self.drift.flush()
        except Exception as exc:  # the database or the window process may be away
            detail = exc.details if isinstance(exc, DriftFlushError) else str(exc)
            log.warning("drift flush failed: %s: %s", type(exc).__name__, detail)
        try:
            # Latency and silences are judged every LATENCY_EVERY seconds, not at every flush:
            # a firing alert records a repeat per evaluation.
            now = time.monotonic()
            if now - self._latency_checked >= LATENCY_EVERY:
                self._latency_checked = now
                for model_name, p99 in self.service.latency_p99().items():
                    self.alerts.on_latency(model_name, p99)
                # Silences that ended: notify the open alerts they covered. The alerts are read
                # only when a silence did end (listing them all is a ~15 ms query).
                self.silences.sweep(self._open_alerts_when_read(), self.notifier.notify_now)
            # Alertmanager resolves alerts that are not re-sent within its resolve_timeout.
            if now - self._resent >= RESEND_EVERY:
                self._resent = now
                self.notifier.resend_open(self._open_alerts_when_read())
        except Exception as exc:  # the database may be away; tried again at the next pass
            log.warning("alert checks failed: %s: %s", type(exc).__name__, exc)

    def _load_models(self) -> None:
        try:
            for line in recover(Path(self.settings.model_dir)):
                log.warning("model catalogue: %s (left by an interrupted registration)", line)
        except OSError as exc:  # a read-only MODEL_DIR: nothing to tidy
            log.info("model catalogue not tidied: %s", exc)
        try:
            self._catalog_seen = catalog_signature(Path(self.settings.model_dir))
            self.adopt(ModelRegistry.load(Path(self.settings.model_dir)))
        except Exception as exc:  # never leave readiness hanging on an unexpected error
            msg = f"model loading failed: {type(exc).__name__}: {exc}"
            log.exception(msg)
            self.startup_errors.append(msg)
        finally:
            self.models_ready.set()
        while not self._stop.wait(self.settings.catalog_poll_seconds):
            try:
                self.check_catalog()
            except Exception as exc:  # a half-written folder, a full disk: the next poll retries
                log.warning("catalogue reload failed: %s: %s", type(exc).__name__, exc)

    def check_catalog(self) -> bool:
        """Load the catalogue again when a model was registered, replaced or removed (each
        worker polls every ``CATALOG_POLL_SECONDS``); True when it changed."""
        model_dir = Path(self.settings.model_dir)
        with self._checking:  # the poller and a registration route, one at a time
            seen = catalog_signature(model_dir)
            if seen == self._catalog_seen or swap_in_progress(model_dir):
                return False  # unchanged, or a version between its two renames: look again later
            self.adopt(ModelRegistry.load(model_dir))
            self._catalog_seen = seen
            return True

    def adopt(self, loaded: ModelRegistry) -> None:
        """Serve and watch ``loaded``: requests in flight finish on the models they started with;
        a new or replaced version gets its reference profile (a new live window), a removed model
        is no longer watched; the request bodies and routes follow (``catalog_listeners``)."""
        before = {m.name: m.version for m in self.service.models}
        with self._adopting:
            for name, version in before.items():
                now = loaded.models.get(name)
                if now is None or now.version != version:
                    self.metrics.model_loaded.remove(name, version)
            for model in loaded:
                self.metrics.model_loaded.labels(model.name, model.version).set(1)
                # Both outcomes exist from the start (an error rate of 0 rather than no data).
                for status in ("success", "error"):
                    self.metrics.predictions.labels(model.name, status)
            for name, reason in loaded.errors.items():
                log.warning("model %s not loaded: %s", name, reason)
            defaults = {}
            for name, manifest in loaded.manifests.items():
                served = loaded.observed.get(name)
                holdout = served.metadata.holdout_metrics if served and served.metadata else {}
                rule = manifest.performance_rule
                own = rule.model_dump(exclude_none=True) if rule else None
                defaults[name] = task_performance_rule(manifest.task, holdout, own)
            self.alerts.adopt_models(defaults)
            for name in set(self.drift.model_names) - set(loaded.manifests):
                self.drift.remove_profile(name)
                self.profile_errors.pop(name, None)
            watched = _versions(self.service.models)
            for name, current in _versions(loaded).items():
                if watched.get(name) != current or name not in self.drift.model_names:
                    self._load_profile(name, current)
            for model in loaded.observed.values():
                holdout = model.metadata.holdout_metrics if model.metadata else {}
                bound = self.alerts.rules_for(model.name).performance_bound(model.name, holdout)
                if bound is not None:
                    direction = "above" if bound[0] in LOWER_IS_BETTER else "below"
                    gauge = self.metrics.performance_alert_bound
                    gauge.labels(model.name, bound[0], direction).set(bound[1])
            self.bodies = ModelBodies(loaded.manifests)
            self.service.models = loaded
            for listener in self.catalog_listeners:
                listener(loaded)
        log.info("models loaded: %s", ", ".join(loaded.models) or "none")

    def _load_profile(self, name: str, version: str) -> None:
        try:
            profile = load_profile(Path(self.settings.model_dir), name)
        except Exception as exc:  # a corrupt profile must not stop the other models
            self.profile_errors[name] = f"unreadable reference profile: {exc}"
            return
        if profile is None:
            self.profile_errors[name] = "no reference profile: run `mlobs setup-reference`"
            return
        if profile.model_version != version:
            log.warning(
                "%s: reference profile was built for version %s, model is %s",
                name, profile.model_version, version,
            )  # fmt: skip
        self.profile_errors.pop(name, None)
        self.drift.set_profile(profile)

    def stop(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(10)
        self.flush_drift()
        self.process_labels(full=False)
        self.notifier.stop()
        lost = self.prediction_log.stop()
        if lost:
            log.error("%d logged predictions could not be written at shutdown", lost)
        if self.insert_process is not None:
            self.insert_process.stop()
        if self.window_process is not None:
            self.window_process.stop()
        self.engine.dispose()
