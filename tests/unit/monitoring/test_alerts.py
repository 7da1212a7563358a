"""The alert manager on real databases: lifecycle, deduplication, escalation, self-resolution,
persistence, concurrency and metrics. Time comes from a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from mlobs.errors import NotFound
from mlobs.monitoring.alerts import (
    GLOBAL_PERFORMANCE_RULE,
    Alert,
    AlertFilter,
    AlertManager,
    AlertRules,
    InvalidTransition,
    Signal,
    task_performance_rule,
    transition,
)
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.quality import FeatureQuality, QualityReport
from mlobs.storage.alert_repository import AlertRepository
from mlobs.storage.db import make_engine, migrate

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


_ENGINES: list[Engine] = []


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while _ENGINES:
        _ENGINES.pop().dispose()


def _manager(db_url: str, resolve_after: int = 3) -> tuple[AlertManager, CollectorRegistry]:
    engine = make_engine(db_url)
    _ENGINES.append(engine)
    migrate(engine)
    registry = CollectorRegistry()
    mgr = AlertManager(AlertRepository(engine), Metrics(registry),
                       AlertRules(resolve_after=resolve_after), clock=Clock(),
                       model_names=("fraud", "price", "churn"))  # fmt: skip
    return mgr, registry


def drift(share: float, model: str = "fraud") -> Signal:
    rules = AlertRules()
    if share > rules.drift_critical_share:
        return Signal(model, "drift", "live", True, "drift_critical", "critical", share, 0.3, "x")
    if share > rules.drift_warning_share:
        return Signal(model, "drift", "live", True, "drift_detected", "warning", share, 0.2, "x")
    return Signal(model, "drift", "live", False, value=share)


def _opened(reg: CollectorRegistry, model: str, kind: str, sev: str) -> float:
    v = reg.get_sample_value("mlobs_alerts_total",
                             {"model_name": model, "alert_type": kind, "severity": sev})  # fmt: skip
    return v or 0.0


def test_transition_table() -> None:
    a = Alert("1", "f/d/l", "f", "drift", "drift_detected", "live", "warning", "active", 0.25,
              0.2, "m", T0, T0, T0)  # fmt: skip
    acked = transition(a, "acknowledged", T0, "ann", "looking")
    assert acked.state == "acknowledged" and acked.acknowledged_by == "ann"
    done = transition(acked, "resolved", T0, "bob", "fixed")
    assert done.state == "resolved" and done.resolved_by == "bob" and done.note == "fixed"
    assert transition(a, "resolved", T0, "bob").state == "resolved"
    for bad_from, to in ((done, "acknowledged"), (done, "resolved"), (acked, "acknowledged")):
        with pytest.raises(InvalidTransition) as err:
            transition(bad_from, to, T0, "x")  # type: ignore[arg-type]
        assert err.value.current == bad_from.state


def test_open_repeat_escalate_then_resolve_by_itself(db_url: str) -> None:
    mgr, reg = _manager(db_url, resolve_after=3)
    first = mgr.apply(drift(0.25))
    assert first is not None and first.alert_type == "drift_detected" and first.state == "active"
    again = mgr.apply(drift(0.26))
    assert again is not None and again.id == first.id and again.occurrences == 2
    worse = mgr.apply(drift(0.5))
    assert worse is not None and worse.id == first.id
    assert worse.severity == "critical" and worse.alert_type == "drift_critical"
    assert worse.value == 0.5
    # Openings and escalations are counted; the repeat is not.
    assert _opened(reg, "fraud", "drift_detected", "warning") == 1
    assert _opened(reg, "fraud", "drift_critical", "critical") == 1
    assert reg.get_sample_value("mlobs_active_alerts", {"model_name": "fraud"}) == 1
    # Clear twice, fire again (the clear count restarts: no flapping), then clear three times.
    assert mgr.apply(drift(0.0)) is None and mgr.apply(drift(0.0)) is None
    mgr.apply(drift(0.4))
    assert mgr.apply(drift(0.0)) is None and mgr.apply(drift(0.0)) is None
    resolved = mgr.apply(drift(0.0))
    assert resolved is not None and resolved.state == "resolved" and resolved.resolved_by == "mlobs"
    assert reg.get_sample_value("mlobs_active_alerts", {"model_name": "fraud"}) == 0
    kinds = [e.kind for e in mgr.store.get(first.id).events]
    assert kinds == ["opened", "repeated", "escalated", "repeated", "resolved"]
    # After resolution, a new firing opens a new alert.
    new = mgr.apply(drift(0.25))
    assert new is not None and new.id != first.id
    assert _opened(reg, "fraud", "drift_detected", "warning") == 2


def test_acknowledge_and_resolve_by_hand(db_url: str) -> None:
    mgr, reg = _manager(db_url)
    a = mgr.apply(Signal("price", "latency", "predict", True, "high_latency", "warning", 0.9, 0.5))
    assert a is not None
    acked = mgr.acknowledge(a.id, "ann", "on it")
    assert acked.state == "acknowledged" and acked.note == "on it"
    with pytest.raises(InvalidTransition) as err:
        mgr.acknowledge(a.id, "ann", None)
    assert err.value.current == "acknowledged"
    # A repeat while acknowledged keeps the state and the same alert.
    rep = mgr.apply(
        Signal("price", "latency", "predict", True, "high_latency", "warning", 0.8, 0.5)
    )
    assert rep is not None and rep.id == a.id and rep.state == "acknowledged"
    done = mgr.resolve(a.id, "bob", "scaled out")
    assert done.state == "resolved" and done.resolved_by == "bob"
    with pytest.raises(InvalidTransition):
        mgr.resolve(a.id, "bob", None)
    with pytest.raises(NotFound):
        mgr.acknowledge("nope", "x", None)
    assert [e.kind for e in mgr.store.get(a.id).events] == [
        "opened", "acknowledged", "repeated", "resolved"
    ]  # fmt: skip


def test_alerts_and_history_survive_a_restart(db_url: str) -> None:
    mgr, _ = _manager(db_url)
    a = mgr.apply(drift(0.5, "churn"))
    assert a is not None
    mgr.acknowledge(a.id, "ann", None)
    again, reg = _manager(db_url)  # a new process: new engine, new registry
    again.rebuild_metrics()
    assert reg.get_sample_value("mlobs_active_alerts", {"model_name": "churn"}) == 1
    assert reg.get_sample_value("mlobs_active_alerts", {"model_name": "fraud"}) == 0
    stored = again.store.get(a.id)
    assert stored.state == "acknowledged" and [e.kind for e in stored.events] == [
        "opened", "acknowledged"
    ]  # fmt: skip
    # The open alert is still deduplicated against after the restart.
    assert again.apply(drift(0.6, "churn")).id == a.id  # type: ignore[union-attr]


def test_concurrent_firings_of_one_fingerprint_open_one_alert(db_url: str) -> None:
    managers = [_manager(db_url)[0] for _ in range(4)]  # as from separate processes
    barrier = threading.Barrier(len(managers))
    ids: list[str] = []

    def fire(m: AlertManager) -> None:
        barrier.wait()
        for _ in range(3):
            a = m.apply(drift(0.25, "price"))
            assert a is not None
            ids.append(a.id)

    threads = [threading.Thread(target=fire, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    alerts, total = managers[0].store.list(AlertFilter(model_name="price"))
    assert total == 1 and alerts[0].occurrences == 12


def test_listing_filters_paging_and_summary(db_url: str) -> None:
    mgr, _ = _manager(db_url)
    mgr.apply(drift(0.5, "fraud"))
    mgr.apply(drift(0.25, "price"))
    q = mgr.apply(Signal("churn", "data_quality", "live", True, "data_quality_issue", "warning",
                         0.2, 0.1, "m"))  # fmt: skip
    assert q is not None
    mgr.resolve(q.id, "ann", None)
    items, total = mgr.store.list(AlertFilter())
    assert total == 3 and [a.model_name for a in items] == [
        "churn",
        "price",
        "fraud",
    ]  # newest first
    assert mgr.store.list(AlertFilter(severity="critical"))[1] == 1
    assert mgr.store.list(AlertFilter(state="resolved"))[0][0].model_name == "churn"
    assert mgr.store.list(AlertFilter(alert_type="drift_detected"))[0][0].model_name == "price"
    page, total = mgr.store.list(AlertFilter(limit=1, offset=1))
    assert total == 3 and len(page) == 1 and page[0].model_name == "price"
    s = mgr.store.summary()
    assert s["by_status"] == {"active": 2, "resolved": 1}
    assert s["by_model"] == {"fraud": 1, "price": 1}
    assert s["by_severity"] == {"critical": 1, "warning": 1}
    assert s["by_type"] == {"drift_critical": 1, "drift_detected": 1}


def test_per_model_thresholds_and_severities_from_yaml(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("fraud:\n  missing_share: 0.05\n  quality_severity: critical\n"
                    "  resolve_after: 1\n")  # fmt: skip
    mgr, _ = _manager(db_url)
    mgr.per_model = AlertManager.load_overrides(mgr.rules, path)
    assert mgr.rules_for("fraud").missing_share == 0.05
    assert mgr.rules_for("churn").missing_share == 0.10
    fraud = mgr.rules_for("fraud").quality("fraud", "live", _quality(0.07))
    churn = mgr.rules_for("churn").quality("churn", "live", _quality(0.07))
    assert fraud.firing and fraud.severity == "critical" and not churn.firing
    opened = mgr.apply(fraud)
    assert opened is not None
    assert mgr.apply(mgr.rules_for("fraud").quality("fraud", "live", _quality(0.0))) is not None

    bad = tmp_path / "bad.yml"
    bad.write_text("fraud:\n  missing_sahre: 0.05\n")
    with pytest.raises(ValueError, match="missing_sahre"):
        AlertManager.load_overrides(AlertRules(), bad)
    bad.write_text("fraud:\n  latency_severity: loud\n")
    with pytest.raises(ValueError, match="latency_severity"):
        AlertManager.load_overrides(AlertRules(), bad)


def _quality(missing: float) -> QualityReport:
    return QualityReport(
        n_rows=100, missing_share=missing, missing_status="ok", duplicate_rows=0,
        duplicate_status="ok",
        features={"amount": FeatureQuality("amount", missing, "ok")},
    )  # fmt: skip


def test_racing_evaluations_and_operators_keep_every_alert_consistent(db_url: str) -> None:
    """Firing, clearing and resolving by hand from several threads at once: every alert ends up
    resolved at most once, and only resolved alerts have given up their fingerprint."""
    managers = [_manager(db_url, resolve_after=2)[0] for _ in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def evaluate(m: AlertManager, firing_every: int) -> None:
        try:
            for i in range(40):
                m.apply(drift(0.25 if i % firing_every == 0 else 0.0, "fraud"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def operate(m: AlertManager) -> None:
        try:
            while not stop.is_set():
                for a in m.store.list(AlertFilter(state="active"))[0]:
                    try:
                        m.resolve(a.id, "ann", "by hand")
                    except InvalidTransition:
                        pass
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=evaluate, args=(managers[0], 2)),
               threading.Thread(target=evaluate, args=(managers[1], 3))]  # fmt: skip
    operator = threading.Thread(target=operate, args=(managers[2],))
    operator.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    operator.join()
    assert not errors, errors
    alerts, total = managers[0].store.list(AlertFilter(limit=500))
    assert total >= 1
    open_alerts = [a for a in alerts if a.state != "resolved"]
    assert len(open_alerts) <= 1
    for a in alerts:
        full = managers[0].store.get(a.id)
        kinds = [e.kind for e in full.events]
        assert kinds[0] == "opened" and kinds.count("resolved") == (
            1 if a.state == "resolved" else 0
        )
        if a.state == "resolved":
            assert kinds[-1] == "resolved" and full.resolved_by in ("ann", "mlobs")


# ------------------------------------------------------------------ performance and concept rules

HOLDOUT = {"accuracy": 0.80, "roc_auc": 0.90, "mae": 20_000.0}


@pytest.mark.parametrize(
    ("task", "metric", "bound"),
    [
        ("binary_classification", "roc_auc", 0.85),
        ("multiclass_classification", "accuracy", 0.75),
        ("regression", "mae", 25_000.0),
    ],
)
def test_default_performance_rules_go_by_task_relative_to_the_holdout(
    task: str, metric: str, bound: float
) -> None:
    rules = AlertRules(default_performance_rule=task_performance_rule(task, HOLDOUT))
    got = rules.performance_bound("m", HOLDOUT)
    assert got is not None and got[0] == metric and got[1] == pytest.approx(bound)


def test_a_manifest_rule_wins_and_models_without_holdout_figures() -> None:
    own = {"metric": "accuracy", "delta": 0.05}
    assert task_performance_rule("binary_classification", HOLDOUT, own) == own
    # A classifier without the holdout figure gets the global accuracy < 0.8; a regressor none.
    assert task_performance_rule("binary_classification", {}) == GLOBAL_PERFORMANCE_RULE
    assert task_performance_rule("multiclass_classification", {}) == GLOBAL_PERFORMANCE_RULE
    assert task_performance_rule("regression", {}) is None
    assert AlertRules(default_performance_rule=None).performance_bound("m", {}) == ("accuracy", 0.8)


def test_performance_signal_fires_on_the_wrong_side_of_the_bound_only() -> None:
    acc = AlertRules(default_performance_rule={"metric": "accuracy", "delta": 0.05})
    low = acc.performance("churn", {"accuracy": 0.70}, HOLDOUT)
    ok = acc.performance("churn", {"accuracy": 0.76}, HOLDOUT)
    assert low is not None and low.firing and low.alert_type == "performance_degradation"
    assert low.threshold == pytest.approx(0.75) and low.value == 0.70
    assert ok is not None and not ok.firing
    mae = AlertRules(default_performance_rule=task_performance_rule("regression", HOLDOUT))
    high_mae = mae.performance("price", {"mae": 26_000.0}, HOLDOUT)
    assert high_mae is not None and high_mae.firing
    assert not mae.performance("price", {"mae": 24_000.0}, HOLDOUT).firing  # type: ignore[union-attr]
    # No verdict without the metric (ROC AUC of a one-class window) or its holdout figure.
    auc = AlertRules(
        default_performance_rule=task_performance_rule("binary_classification", HOLDOUT)
    )
    assert auc.performance("fraud", {"accuracy": 0.5}, HOLDOUT) is None
    assert auc.performance("fraud", {"roc_auc": 0.5}, {}) is None


def test_adopting_the_catalogue_keeps_a_models_own_rules() -> None:
    registry = CollectorRegistry()
    mine = AlertRules(missing_share=0.01)
    mgr = AlertManager(None, Metrics(registry), AlertRules(), clock=Clock(), per_model={"a": mine})  # type: ignore[arg-type]
    mgr.adopt_models({"a": {"metric": "f1", "delta": 0.1}, "b": None})
    assert mgr.model_names == ("a", "b")
    assert mgr.rules_for("a").missing_share == 0.01
    assert mgr.rules_for("a").performance_bound("a", {"f1": 0.6}) == ("f1", pytest.approx(0.5))
    assert mgr.rules_for("b").default_performance_rule is None


def test_seed_global_default_and_overrides() -> None:
    # A model without a default rule gets the global accuracy < 0.8.
    assert AlertRules().performance_bound("other", {}) == ("accuracy", 0.8)
    absolute = AlertRules(performance_threshold=0.9)
    assert absolute.performance_bound("churn", HOLDOUT) == ("accuracy", 0.9)
    other = AlertRules(performance_metric="f1", performance_holdout_delta=0.1)
    assert other.performance_bound("churn", {"f1": 0.6}) == ("f1", pytest.approx(0.5))
    factor = AlertRules(performance_metric="rmse", performance_holdout_factor=1.5)
    assert factor.performance_bound("price", {"rmse": 10.0}) == ("rmse", pytest.approx(15.0))
    # A metric named without a bound judges nothing rather than guessing one.
    assert AlertRules(performance_metric="f1").performance_bound("churn", {"f1": 0.6}) is None
    with pytest.raises(ValueError, match="performance_severity"):
        AlertRules(performance_severity="page")  # type: ignore[arg-type]


def test_concept_signals_open_and_clear_an_alert(db_url: str) -> None:
    manager, _ = _manager(db_url, resolve_after=2)
    manager.on_concept_drift("churn", True, 9.5, 8.0, 420)
    [alert] = manager.store.list(AlertFilter(model_name="churn"))[0]
    assert (alert.alert_type, alert.state, alert.value) == ("concept_drift", "active", 9.5)
    manager.on_concept_drift("churn", False, 0.0, 0.0, 100)
    assert manager.store.get(alert.id).state == "active"
    manager.on_concept_drift("churn", False, 0.0, 0.0, 100)
    assert manager.store.get(alert.id).state == "resolved"


def test_alert_changes_replayed_from_another_process_count_and_notify_once(db_url: str) -> None:
    """The window process judges live verdicts with a manager of its own and sends the changes
    back as JSON; replayed here they count, notify and set the gauge as ``apply`` does here."""
    import orjson

    from mlobs.monitoring.alerts import alert_from_dict
    from mlobs.monitoring.notifications import alert_to_dict

    there, _ = _manager(db_url)
    changes: list[tuple[Alert, str]] = []
    there.listeners.append(lambda a, k: changes.append((a, k)))
    there.apply(drift(0.25))
    there.apply(drift(0.25))  # a repeat: told too (notifiers skip it), never counted
    there.apply(drift(0.5))  # escalated in place
    a = there.acknowledge(changes[-1][0].id, "ann", "on it")
    assert [k for _, k in changes] == ["opened", "repeated", "escalated", "acknowledged"]
    wire = orjson.loads(orjson.dumps([[alert_to_dict(x), k] for x, k in changes]))
    back = [(alert_from_dict(d), k) for d, k in wire]
    assert [x for x, _ in back] == [x for x, _ in changes]  # every field, events and times
    assert back[-1][0] == a and back[-1][0].acknowledged_at is not None

    registry = CollectorRegistry()
    here = AlertManager(
        there.store, Metrics(registry), AlertRules(), clock=Clock(), model_names=("fraud", "price")
    )
    told: list[str] = []
    here.listeners.append(lambda x, k: told.append(k))
    here.replay(back, there.store.open_counts())
    assert told == ["opened", "repeated", "escalated", "acknowledged"]
    assert _opened(registry, "fraud", "drift_detected", "warning") == 1
    assert _opened(registry, "fraud", "drift_critical", "critical") == 1
    assert registry.get_sample_value("mlobs_active_alerts", {"model_name": "fraud"}) == 1
    assert registry.get_sample_value("mlobs_active_alerts", {"model_name": "price"}) == 0
    here.replay([], None)  # nothing changed, no counts read: the gauge stays
    assert registry.get_sample_value("mlobs_active_alerts", {"model_name": "fraud"}) == 1
