"""The live windows evaluated in a child process (SQLite and PostgreSQL): the results, metrics and
alerts reach the serving process as they would in-process; counts survive a child that dies or
hangs; a new child is sent the reference profile again; a replaced profile is picked up."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from helpers import WAIT_SECONDS, eventually, sample_records
from mlobs.data import DATASETS, DriftSpec, generate
from mlobs.monitoring.alerts import Alert, AlertManager, AlertRules, EventKind
from mlobs.monitoring.drift_monitor import (
    DriftConfig,
    DriftFlushError,
    DriftMonitor,
    profile_version,
)
from mlobs.monitoring.live_windows import PushAnswerLost
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.profiles import ReferenceProfile
from mlobs.storage.alert_repository import AlertRepository
from mlobs.storage.child_process import StoreUnreachable
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.drift_repository import DriftRepository
from mlobs.storage.window_process import WindowProcess

SPEC = DATASETS["churn"]
CONFIG = DriftConfig(window_size=400, min_samples=300, idle_pass_seconds=0)


def _profile(seed: int = 1) -> ReferenceProfile:
    return ReferenceProfile.build(
        generate("churn", 5_000, seed=seed), features=SPEC.feature_names,
        categorical_features=SPEC.categorical, output=np.linspace(0, 1, 5_000),
        model_name="churn",
    )  # fmt: skip


def _drifted(n: int, seed: int) -> list[dict[str, Any]]:
    frame = generate("churn", n, seed=seed, drift=DriftSpec.preset("churn", 0.9))
    return [
        {k: (None if pd.isna(v) else v) for k, v in rec.items()}
        for rec in frame[SPEC.feature_names].to_dict("records")
    ]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Stack:
    monitor: DriftMonitor
    windows: WindowProcess
    metrics: Metrics
    repo: DriftRepository
    events: list[tuple[Alert, EventKind]]


@pytest.fixture
def stack(db_url: str) -> Iterator[Stack]:
    engine = make_engine(db_url)
    migrate(engine)
    metrics = Metrics(CollectorRegistry())
    rules = AlertRules()
    alerts = AlertManager(AlertRepository(engine), metrics, rules, clock=_now)
    events: list[tuple[Alert, EventKind]] = []
    alerts.listeners.append(lambda a, k: events.append((a, k)))
    windows = WindowProcess(db_url, CONFIG, rules, {}, alerts.replay, timeout=WAIT_SECONDS)
    repo = DriftRepository(engine)
    monitor = DriftMonitor(repo, metrics, CONFIG, clock=_now, windows=windows)
    monitor.listeners.append(alerts)  # for posted checks; live verdicts are judged in the child
    monitor.set_profile(_profile())
    windows.start()
    try:
        yield Stack(monitor, windows, metrics, repo, events)
    finally:
        windows.stop()
        engine.dispose()


def _observe(monitor: DriftMonitor, records: list[dict[str, Any]]) -> None:
    for rec in records:
        monitor.observe("churn", rec, 0.9)


def test_a_window_is_evaluated_in_the_child_and_its_alert_replayed_here(stack: Stack) -> None:
    sample = stack.metrics.registry.get_sample_value
    _observe(stack.monitor, _drifted(450, seed=2))
    results = stack.monitor.flush()
    assert stack.windows.pid not in (None, os.getpid())
    assert len(results) == 1
    r = results[0]
    assert r.dataset_name == "live" and r.n_rows == 450 and r.dataset_drift
    assert r.report["features"]["monthly_charges"]["status"] in ("warning", "critical")
    # Stored once, by the child, in the shared database.
    assert [h.window_id for h in stack.repo.history("churn", "live", 10)] == [r.window_id]
    # Exported here from what the child sent back.
    assert sample("mlobs_drift_share", {"model_name": "churn"}) == pytest.approx(r.drift_share)
    assert sample("mlobs_drift_windows_evaluated_total",
                  {"model_name": "churn", "status": r.status}) == 1  # fmt: skip
    score = r.report["features"]["tenure_months"]["score"]
    assert sample("mlobs_drift_score",
                  {"model_name": "churn", "feature": "tenure_months"}) == pytest.approx(score)  # fmt: skip
    # The alert rules ran in the child; the change was replayed into this manager.
    kinds = [(a.alert_type, k) for a, k in stack.events]
    assert kinds and kinds[0][1] == "opened" and kinds[0][0].startswith("drift")
    a = stack.events[0][0]
    assert a.model_name == "churn" and a.opened_at.tzinfo is not None
    assert sample("mlobs_alerts_total", {"model_name": "churn", "alert_type": a.alert_type,
                                         "severity": a.severity}) == 1  # fmt: skip
    assert sample("mlobs_active_alerts", {"model_name": "churn"}) == len(
        {x.fingerprint for x, _ in stack.events}
    )
    # A second drifted window repeats the alert: nothing new opens, nothing is counted twice.
    _observe(stack.monitor, _drifted(450, seed=3))
    assert len(stack.monitor.flush()) == 1
    assert sample("mlobs_alerts_total", {"model_name": "churn", "alert_type": a.alert_type,
                                         "severity": a.severity}) == 1  # fmt: skip
    assert sample("mlobs_drift_windows_evaluated_total",
                  {"model_name": "churn", "status": r.status}) == 2  # fmt: skip


@pytest.mark.parametrize("how", ["killed", "closed", "hung"])
def test_counts_survive_a_child_that_is_gone_and_are_never_counted_twice(
    stack: Stack, how: str
) -> None:
    """A killed child is replaced before the push (the profile is sent to the new one); a push
    that cannot be handed over (the process is stopped) keeps its counts for the next; a push
    whose answer never comes (the child hangs after taking it) may have been applied, so its
    counts are dropped rather than counted twice."""
    records = sample_records("churn", 120, seed=4)
    _observe(stack.monitor, records[:60])
    assert stack.monitor.flush() == []
    first = stack.windows.pid
    assert first is not None
    _observe(stack.monitor, records[60:])
    expected = 120
    if how == "killed":
        os.kill(first, signal.SIGKILL)
        child = stack.windows._proc
        assert child is not None
        # dead, as the next push will see
        eventually(lambda: child.poll() is not None, interval=0.02, message="child not dead")
    elif how == "closed":
        stack.windows.stop()
        with pytest.raises(DriftFlushError) as err:  # a 503 to a live check
            stack.monitor.flush()
        assert type(err.value.__cause__) is StoreUnreachable
        assert stack.monitor.status("churn")["window"]["rows"] == 120  # 60 pushed, 60 kept
        stack.windows.start()
    else:
        stack.windows.timeout = 1.0  # the answer timeout under test: a hung child is given up
        os.kill(first, signal.SIGSTOP)
        with pytest.raises(DriftFlushError) as err:
            stack.monitor.flush()
        assert isinstance(err.value.__cause__, PushAnswerLost)
        assert stack.monitor.status("churn")["window"]["rows"] == 60  # 60 dropped
        stack.windows.timeout = WAIT_SECONDS
        expected = 60
    stack.monitor.flush()
    assert stack.windows.pid not in (None, first)
    assert stack.windows.restarts == (0 if how == "closed" else 1)
    window = stack.repo.open_window("churn")
    assert window is not None and window.n_rows == expected
    assert window.profile_version == profile_version(stack.monitor.profile("churn"))


def test_a_profile_replaced_in_this_process_is_sent_to_the_child(stack: Stack) -> None:
    _observe(stack.monitor, sample_records("churn", 50, seed=5))
    stack.monitor.flush()
    old = stack.repo.open_window("churn")
    assert old is not None
    fresh = _profile(seed=9)
    stack.monitor.set_profile(fresh)
    _observe(stack.monitor, sample_records("churn", 30, seed=6))
    stack.monitor.flush()
    window = stack.repo.open_window("churn")
    # The window on the old bins was discarded; the new one is on the new profile.
    assert window is not None and window.id != old.id and window.n_rows == 30
    assert window.profile_version == profile_version(fresh)


def test_a_push_for_a_profile_the_child_was_not_sent_is_refused_then_resent(stack: Stack) -> None:
    from mlobs.monitoring.live_windows import Push
    from mlobs.monitoring.windows import LiveWindow
    from mlobs.storage.window_process import UNKNOWN_PROFILE

    profile = stack.monitor.profile("churn")
    version = profile_version(profile)
    live = LiveWindow(profile)
    for rec in sample_records("churn", 40, seed=7):
        live.add(rec, 0.2)
    push = Push("churn", version, profile, live.take())
    stack.windows.start()
    # Believed sent to this child, which never got it.
    stack.windows._sent, stack.windows._sent_generation = (
        {("churn", version)},
        stack.windows.generation,
    )
    (out,) = stack.windows.push([push])
    assert not out.added and out.error == UNKNOWN_PROFILE
    assert stack.repo.open_window("churn") is None  # nothing counted
    (out,) = stack.windows.push([push])  # the profile goes with it this time
    assert out.added and out.error is None and out.window_rows == 40
