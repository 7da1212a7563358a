"""Alerts: the lifecycle as an explicit table, the rules that turn verdicts into signals, and the
manager that deduplicates, escalates and resolves.

Lifecycle: ``active -> acknowledged -> resolved`` (``active -> resolved`` too). An alert has one
fingerprint (model, family, scope); while it is open, a repeat firing updates it (last seen,
occurrences, latest value) and may escalate its severity in place; it opens nothing new. It
resolves by hand, or by itself once its condition stayed clear for ``resolve_after`` consecutive
evaluations (no flapping). After resolution, a new firing opens a new alert.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from mlobs.errors import Conflict
from mlobs.monitoring.drift_detector import DriftReport
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.quality import QualityReport

log = logging.getLogger(__name__)

State = Literal["active", "acknowledged", "resolved"]
Severity = Literal["warning", "critical"]
EventKind = Literal["opened", "repeated", "escalated", "acknowledged", "resolved"]
SEVERITY_RANK: Mapping[str, int] = {"warning": 1, "critical": 2}

_ALLOWED: Mapping[State, frozenset[State]] = {
    "active": frozenset({"acknowledged", "resolved"}),
    "acknowledged": frozenset({"resolved"}),
    "resolved": frozenset(),
}


class InvalidTransition(Conflict):
    def __init__(self, alert_id: str, current: State, to: State) -> None:
        super().__init__(f"alert {alert_id} is {current}; it cannot become {to}", current=current)
        self.alert_id, self.to = alert_id, to


@dataclass(frozen=True)
class AlertEvent:
    kind: EventKind
    at: datetime
    severity: Severity | None = None
    value: float | None = None
    by: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Alert:
    id: str
    fingerprint: str
    model_name: str
    family: str
    alert_type: str
    scope: str
    severity: Severity
    state: State
    value: float
    threshold: float
    message: str
    opened_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    occurrences: int = 1
    clear_count: int = 0
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    note: str | None = None
    events: tuple[AlertEvent, ...] = ()


_ALERT_TIMES = ("opened_at", "updated_at", "last_seen_at", "acknowledged_at", "resolved_at")


def alert_from_dict(d: Mapping[str, Any]) -> Alert:
    """The inverse of ``notifications.alert_to_dict`` (an alert sent from another process)."""
    fields = dict(d)
    for name in _ALERT_TIMES:
        if fields.get(name) is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    fields["events"] = tuple(
        AlertEvent(**{**e, "at": datetime.fromisoformat(e["at"])}) for e in d.get("events", ())
    )
    return Alert(**fields)


def transition(alert: Alert, to: State, at: datetime, by: str, note: str | None = None) -> Alert:
    """The alert moved to ``to``; InvalidTransition (a 409) when the table forbids it."""
    if to not in _ALLOWED[alert.state]:
        raise InvalidTransition(alert.id, alert.state, to)
    changes: dict[str, Any] = {"state": to, "updated_at": at, "note": note or alert.note}
    if to == "acknowledged":
        changes |= {"acknowledged_by": by, "acknowledged_at": at}
    else:
        changes |= {"resolved_by": by, "resolved_at": at}
    return dataclasses.replace(alert, **changes)


@dataclass(frozen=True)
class Signal:
    """One rule's verdict for one fingerprint: firing (with type and severity) or clear."""

    model_name: str
    family: str
    scope: str
    firing: bool
    alert_type: str = ""
    severity: Severity = "warning"
    value: float = 0.0
    threshold: float = 0.0
    message: str = ""

    @property
    def fingerprint(self) -> str:
        return f"{self.model_name}/{self.family}/{self.scope}"


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the alert table (all configurable)."""

    drift_warning_share: float = 0.2
    drift_critical_share: float = 0.3
    missing_share: float = 0.10
    quality_severity: Severity = "warning"
    latency_p99_seconds: float = 0.5
    latency_severity: Severity = "warning"
    resolve_after: int = 3
    # performance_degradation: a metric and a bound. Unset, the model's default applies
    # (``default_performance_rule``: its manifest's rule, else its task's, see
    # ``task_performance_rule``), else the global ``accuracy < 0.8``. The bound is
    # absolute (``threshold``) or relative to the holdout figure: ``holdout - delta`` for a
    # higher-is-better metric (``+ delta`` for a lower-is-better one), or ``holdout x factor``.
    performance_metric: str | None = None
    performance_threshold: float | None = None
    performance_holdout_delta: float | None = None
    performance_holdout_factor: float | None = None
    performance_severity: Severity = "warning"
    concept_severity: Severity = "warning"
    default_performance_rule: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.drift_warning_share <= self.drift_critical_share <= 1:
            raise ValueError(
                "need 0 < drift_warning_share <= drift_critical_share <= 1, got "
                f"{self.drift_warning_share} and {self.drift_critical_share}"
            )
        for name in (
            "quality_severity",
            "latency_severity",
            "performance_severity",
            "concept_severity",
        ):
            if getattr(self, name) not in SEVERITY_RANK:
                raise ValueError(f"{name} must be warning or critical, got {getattr(self, name)!r}")
        if self.resolve_after < 1:
            raise ValueError(f"resolve_after must be >= 1, got {self.resolve_after}")

    def with_overrides(self, overrides: Mapping[str, Any]) -> AlertRules:
        """These rules with some fields replaced (a model's own thresholds and severities)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown alert rule settings: {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)

    def drift(self, model_name: str, report: DriftReport) -> Signal | None:
        if report.status == "insufficient_data":
            return None  # no verdict: neither firing nor clear
        share = report.drift_share
        base = Signal(model_name, "drift", "live", False, value=share)
        drifted = sorted(n for n, f in report.features.items() if f.drifted)
        msg = f"drift share {share:.2f} over {report.n_rows} rows; drifted: {', '.join(drifted)}"
        if share > self.drift_critical_share:
            return dataclasses.replace(
                base, firing=True, alert_type="drift_critical", severity="critical",
                threshold=self.drift_critical_share, message=msg,
            )  # fmt: skip
        if share > self.drift_warning_share:
            return dataclasses.replace(
                base, firing=True, alert_type="drift_detected", severity="warning",
                threshold=self.drift_warning_share, message=msg,
            )  # fmt: skip
        return base

    def quality(self, model_name: str, dataset_name: str, report: QualityReport) -> Signal:
        worst = max(report.features.values(), key=lambda f: f.missing_share, default=None)
        value = worst.missing_share if worst else 0.0
        firing = value > self.missing_share
        msg = ""
        if firing and worst is not None:
            bad = sorted(
                n for n, f in report.features.items() if f.missing_share > self.missing_share
            )
            msg = f"missing values above {self.missing_share:.0%} in {', '.join(bad)}"
        return Signal(
            model_name, "data_quality", dataset_name, firing, "data_quality_issue",
            self.quality_severity, value, self.missing_share, msg,
        )  # fmt: skip

    def latency(self, model_name: str, p99_seconds: float) -> Signal:
        firing = p99_seconds > self.latency_p99_seconds
        msg = f"p99 latency {p99_seconds * 1e3:.0f} ms > {self.latency_p99_seconds * 1e3:.0f} ms"
        return Signal(
            model_name, "latency", "predict", firing, "high_latency", self.latency_severity,
            p99_seconds, self.latency_p99_seconds, msg if firing else "",
        )  # fmt: skip

    def performance_bound(
        self, model_name: str, holdout: Mapping[str, float]
    ) -> tuple[str, float] | None:
        """(metric, bound) of the performance rule; None when its holdout figure is unknown."""
        own = (
            self.performance_metric, self.performance_threshold,
            self.performance_holdout_delta, self.performance_holdout_factor,
        )  # fmt: skip
        rule: Mapping[str, Any]
        if any(v is not None for v in own):
            base = self.default_performance_rule or GLOBAL_PERFORMANCE_RULE
            metric = self.performance_metric or base["metric"]
            rule = {"metric": metric}
            if self.performance_threshold is not None:
                rule["threshold"] = self.performance_threshold
            elif self.performance_holdout_delta is not None:
                rule["delta"] = self.performance_holdout_delta
            elif self.performance_holdout_factor is not None:
                rule["factor"] = self.performance_holdout_factor
            elif metric == base["metric"]:
                rule = base
            else:
                return None  # a metric without a bound: nothing to judge
        else:
            rule = self.default_performance_rule or GLOBAL_PERFORMANCE_RULE
        metric = str(rule["metric"])
        if "threshold" in rule:
            return metric, float(rule["threshold"])
        if metric not in holdout:
            return None
        ref = float(holdout[metric])
        if "delta" in rule:
            delta = float(rule["delta"])
            return metric, (ref + delta if metric in LOWER_IS_BETTER else ref - delta)
        return metric, ref * float(rule["factor"])

    def performance(
        self, model_name: str, realized: Mapping[str, float], holdout: Mapping[str, float]
    ) -> Signal | None:
        bound = self.performance_bound(model_name, holdout)
        if bound is None or bound[0] not in realized:
            return None  # no verdict (e.g. ROC AUC of a window with one class)
        metric, limit = bound
        value = float(realized[metric])
        lower = metric in LOWER_IS_BETTER
        firing = value > limit if lower else value < limit
        msg = (
            f"{metric} {value:.4g} {'>' if lower else '<'} {limit:.4g}"
            + (f" (holdout {holdout[metric]:.4g})" if metric in holdout else "")
            if firing
            else ""
        )
        return Signal(
            model_name, "performance", metric, firing, "performance_degradation",
            self.performance_severity, value, limit, msg,
        )  # fmt: skip

    def concept(
        self, model_name: str, firing: bool, statistic: float, threshold: float, n: int
    ) -> Signal:
        msg = (
            f"error stream shifted from the holdout baseline: detector statistic "
            f"{statistic:.3g} >= {threshold:.3g} after {n} labels"
            if firing
            else ""
        )
        return Signal(
            model_name, "concept", "labels", firing, "concept_drift", self.concept_severity,
            statistic, threshold, msg,
        )  # fmt: skip


# Lower-is-better performance metrics (the rest are higher-is-better).
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape", "log_loss"})
# The global default, and the defaults by task, relative to the holdout figure.
GLOBAL_PERFORMANCE_RULE: Mapping[str, Any] = {"metric": "accuracy", "threshold": 0.8}
TASK_PERFORMANCE_RULES: Mapping[str, Mapping[str, Any]] = {
    "binary_classification": {"metric": "roc_auc", "delta": 0.05},
    "multiclass_classification": {"metric": "accuracy", "delta": 0.05},
    "regression": {"metric": "mae", "factor": 1.25},
}


def task_performance_rule(
    task: str, holdout: Mapping[str, float], own: Mapping[str, Any] | None = None
) -> Mapping[str, Any] | None:
    """A model's default ``performance_degradation`` rule: its manifest's own (``own``), else its
    task's relative to the holdout figure; a classifier without that figure falls back to the
    global ``accuracy < 0.8``, a regressor without it has none."""
    if own:
        return own
    rule = TASK_PERFORMANCE_RULES.get(task)
    if rule is not None and rule["metric"] in holdout:
        return rule
    return None if task == "regression" else GLOBAL_PERFORMANCE_RULE


@dataclass(frozen=True)
class AlertFilter:
    state: State | None = None
    severity: Severity | None = None
    model_name: str | None = None
    alert_type: str | None = None
    limit: int = 50
    offset: int = 0


class AlertStore(Protocol):
    """Where alerts live (storage implements it); every method is one transaction."""

    def fire(self, signal: Signal, at: datetime) -> tuple[Alert, EventKind | None]:
        """Open an alert for the signal, or record a repeat/escalation of the open one. Returns
        the alert and what happened (``opened``, ``escalated``, ``repeated``)."""
        ...

    def clear(self, fingerprint: str, at: datetime, resolve_after: int) -> Alert | None:
        """Count one clear evaluation; returns the alert if this resolved it."""
        ...

    def transition(
        self, alert_id: str, to: State, at: datetime, by: str, note: str | None
    ) -> Alert: ...

    def get(self, alert_id: str) -> Alert: ...

    def list(self, f: AlertFilter) -> tuple[list[Alert], int]: ...

    def summary(self) -> dict[str, dict[str, int]]: ...

    def open_counts(self) -> dict[str, int]: ...


@dataclass
class AlertManager:
    """Turns verdicts into alerts. Implements ``DriftListener`` for the drift monitor."""

    store: AlertStore
    metrics: Metrics
    rules: AlertRules
    clock: Callable[[], datetime]
    model_names: tuple[str, ...] = ()
    per_model: Mapping[str, AlertRules] = field(default_factory=dict)
    listeners: list[Callable[[Alert, EventKind], None]] = field(default_factory=list)
    # Models whose mlobs_active_alerts this manager has set: set to 0 when their last alert ends.
    _gauged: set[str] = field(default_factory=set)

    def rules_for(self, model_name: str) -> AlertRules:
        return self.per_model.get(model_name, self.rules)

    def adopt_models(self, defaults: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Take the catalogue's models: their names, and each one's default performance rule
        (see ``task_performance_rule``), under any rules of its own from the rules file."""
        per_model = dict(self.per_model)
        for name, rule in defaults.items():
            per_model[name] = dataclasses.replace(
                self.rules_for(name), default_performance_rule=rule
            )
        self.per_model = per_model
        self.model_names = tuple(sorted(defaults))

    def init_metrics(self) -> None:
        """Create every (model, alert type, severity) series of ``mlobs_alerts_total`` at 0, so
        that Prometheus' rate() and increase() count the first alert of each kind."""
        for name in self.model_names:
            r = self.rules_for(name)
            for alert_type, severity in (
                ("drift_detected", "warning"), ("drift_critical", "critical"),
                ("data_quality_issue", r.quality_severity),
                ("high_latency", r.latency_severity),
                ("performance_degradation", r.performance_severity),
                ("concept_drift", r.concept_severity),
            ):  # fmt: skip
                self.metrics.alerts_total.labels(name, alert_type, severity)

    def rebuild_metrics(self) -> None:
        """Set ``mlobs_active_alerts`` from the database (at start, and after each change)."""
        self._set_active(self.store.open_counts())

    def _set_active(self, counts: Mapping[str, int]) -> None:
        names = set(self.model_names) | set(counts) | self._gauged
        for name in names:
            self.metrics.active_alerts.labels(name).set(counts.get(name, 0))
        self._gauged = names

    @staticmethod
    def load_overrides(base: AlertRules, path: Path) -> dict[str, AlertRules]:
        """Per-model rules from a YAML file::

        fraud:
          missing_share: 0.05
          latency_p99_seconds: 0.2
          latency_severity: critical
        price:
          drift_warning_share: 0.1
        """
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of model name to rule settings")
        out = {}
        for model, overrides in data.items():
            if not isinstance(overrides, dict):
                raise ValueError(f"{path}: settings of {model!r} must be a mapping")
            out[str(model)] = base.with_overrides(overrides)
        return out

    def apply(self, signal: Signal) -> Alert | None:
        now = self.clock()
        if signal.firing:
            alert, kind = self.store.fire(signal, now)
            if kind in ("opened", "escalated"):
                self.metrics.alerts_total.labels(
                    signal.model_name, alert.alert_type, alert.severity
                ).inc()
                log.warning("alert %s %s: %s", kind, alert.fingerprint, alert.message)
            self._changed(alert, kind)
            return alert
        resolve_after = self.rules_for(signal.model_name).resolve_after
        resolved = self.store.clear(signal.fingerprint, now, resolve_after)
        if resolved is not None:
            log.info("alert resolved by itself: %s", resolved.fingerprint)
            self._changed(resolved, "resolved")
        return resolved

    def _changed(self, alert: Alert, kind: EventKind | None) -> None:
        self.rebuild_metrics()
        if kind is not None:
            self._tell(alert, kind)

    def _tell(self, alert: Alert, kind: EventKind) -> None:
        for listener in self.listeners:
            try:
                listener(alert, kind)
            except Exception:  # a notifier must not break alerting
                log.exception("alert listener failed")

    def replay(
        self,
        changes: Sequence[tuple[Alert, EventKind | None]],
        open_counts: Mapping[str, int] | None,
    ) -> None:
        """Alerts changed by another process's manager (the one evaluating live windows off the
        serving process): count, log and tell the listeners here as ``apply`` would have, and
        set ``mlobs_active_alerts`` from the database's counts read after the changes."""
        for alert, kind in changes:
            if kind in ("opened", "escalated"):
                self.metrics.alerts_total.labels(
                    alert.model_name, alert.alert_type, alert.severity
                ).inc()
                log.warning("alert %s %s: %s", kind, alert.fingerprint, alert.message)
            elif kind == "resolved":
                log.info("alert resolved by itself: %s", alert.fingerprint)
            if kind is not None:
                self._tell(alert, kind)
        if open_counts is not None:
            self._set_active(open_counts)

    # DriftListener
    def on_drift(self, model_name: str, dataset_name: str, report: DriftReport) -> None:
        if dataset_name != "live":
            return  # posted checks answer the caller; only live traffic raises drift alerts
        signal = self.rules_for(model_name).drift(model_name, report)
        if signal is not None:
            self.apply(signal)

    def on_quality(self, model_name: str, dataset_name: str, report: QualityReport) -> None:
        if report.n_rows:
            self.apply(self.rules_for(model_name).quality(model_name, dataset_name, report))

    def on_latency(self, model_name: str, p99_seconds: float) -> None:
        self.apply(self.rules_for(model_name).latency(model_name, p99_seconds))

    # PerformanceListener
    def on_performance(
        self, model_name: str, realized: Mapping[str, float], holdout: Mapping[str, float]
    ) -> None:
        signal = self.rules_for(model_name).performance(model_name, realized, holdout)
        if signal is not None:
            self.apply(signal)

    def on_concept_drift(
        self, model_name: str, firing: bool, statistic: float, threshold: float, n: int
    ) -> None:
        self.apply(self.rules_for(model_name).concept(model_name, firing, statistic, threshold, n))

    # Operators
    def acknowledge(self, alert_id: str, by: str, note: str | None) -> Alert:
        alert = self.store.transition(alert_id, "acknowledged", self.clock(), by, note)
        self._changed(alert, "acknowledged")
        return alert

    def resolve(self, alert_id: str, by: str, note: str | None) -> Alert:
        alert = self.store.transition(alert_id, "resolved", self.clock(), by, note)
        self._changed(alert, "resolved")
        return alert
