"""The performance monitor on real databases: labels consumed exactly once by racing monitors
(as several worker processes do), windows evaluated once, the detector resumed from storage."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, select

from mlobs.data import DATASETS, generate
from mlobs.models import load_model
from mlobs.models.base import TabularModel
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.performance import (
    LabelConflict,
    PerformanceConfig,
    PerformanceMonitor,
    realized_metrics,
)
from mlobs.monitoring.records import PredictionRecord
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.feedback_repository import FeedbackRepository
from mlobs.storage.tables import feedback

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
_ENGINES: list[Engine] = []


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while _ENGINES:
        _ENGINES.pop().dispose()


@pytest.fixture(scope="module")
def churn(model_dir: Path) -> TabularModel:
    return load_model(model_dir, "churn")


def _monitor(db_url: str, model: TabularModel, **config: int) -> PerformanceMonitor:
    engine = make_engine(db_url)
    _ENGINES.append(engine)
    migrate(engine)
    return PerformanceMonitor(
        FeedbackRepository(engine),
        Metrics(CollectorRegistry()),
        clock=lambda: datetime.now(timezone.utc),
        models=lambda: {model.name: model},
        config=PerformanceConfig(**config),
    )


def _served(model: TabularModel, n: int, seed: int) -> list[tuple[PredictionRecord, float]]:
    """Predictions of generated rows, paired with their true labels."""
    df = generate(model.name, n, seed=seed)
    out = model.predict_frame(df)
    assert out.probabilities is not None
    y = df[DATASETS[model.name].target].to_numpy()
    return [
        (
            PredictionRecord(
                id=str(uuid.uuid4()), model_name=model.name, model_version=model.version,
                created_at=T0 + timedelta(seconds=i), features={},
                prediction=float(out.values[i]), probability=float(out.probabilities[i]),
                latency_ms=0.1,
            ),
            float(y[i]),
        )
        for i in range(n)
    ]  # fmt: skip


def test_racing_monitors_consume_each_label_once(db_url: str, churn: TabularModel) -> None:
    n, window = 1_000, 100
    monitors = [_monitor(db_url, churn, window_size=window, batch=37) for _ in range(3)]
    pairs = _served(churn, n, seed=1)
    errors: list[BaseException] = []

    def feed_and_process(k: int) -> None:
        try:
            mine = pairs[k::3]
            for i in range(0, len(mine), 50):
                monitors[k].record(mine[i : i + 50])
                monitors[k].process()
            monitors[k].process(full=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=feed_and_process, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    monitors[0].process(full=True)

    store = monitors[0].store
    tracker = store.tracker("churn")
    assert tracker is not None
    assert tracker.labels_total == n
    assert (tracker.window_seq, tracker.window_count) == (n // window, 0)
    assert tracker.evaluated_through == n // window - 1
    history = store.history("churn", "labelled", 100)
    assert sorted(h.window_seq for h in history) == list(range(n // window))
    assert all(h.n_rows == window for h in history)
    engine = _ENGINES[0]
    with engine.connect() as conn:
        left = conn.execute(
            select(func.count()).select_from(feedback).where(feedback.c.processed.is_(False))
        ).scalar_one()
        per_window = conn.execute(
            select(feedback.c.window_seq, func.count()).group_by(feedback.c.window_seq)
        ).all()
    assert left == 0
    assert sorted(per_window) == [(s, window) for s in range(n // window)]
    # The detector saw every label once: its count is the stream's length (no alarm on
    # in-control labels restarts it).
    summary = monitors[1].summary(churn)
    assert summary["concept_drift"]["labels_seen"] == n


def test_window_figures_are_the_realized_metrics_of_its_labels(
    db_url: str, churn: TabularModel
) -> None:
    monitor = _monitor(db_url, churn, window_size=200, min_labels=50)
    pairs = _served(churn, 450, seed=2)
    monitor.record(pairs)
    monitor.process(full=True)
    history = {h.window_seq: h for h in monitor.store.history("churn", "labelled", 10)}
    assert set(history) == {0, 1}
    labels = monitor.store.window_labels("churn", 1)
    assert [lab.prediction_id for lab in labels] == [p.id for p, _ in pairs[200:400]]
    expected = realized_metrics(churn, labels)
    assert history[1].realized == pytest.approx(expected)
    y = np.array([a for _, a in pairs[200:400]])
    pred = np.array([p.prediction for p, _ in pairs[200:400]])
    assert expected["accuracy"] == pytest.approx(float(np.mean(y == pred)))
    assert history[1].estimated is not None
    assert set(history[1].estimated) >= {"accuracy", "f1", "roc_auc"}


def test_a_contradicting_label_stores_nothing(db_url: str, churn: TabularModel) -> None:
    monitor = _monitor(db_url, churn)
    pairs = _served(churn, 3, seed=3)
    assert monitor.record(pairs[:1]) == ["recorded"]
    rec, actual = pairs[0]
    with pytest.raises(LabelConflict) as err:
        monitor.record([pairs[1], (rec, 1.0 - actual), pairs[2]])
    assert err.value.index == 1
    assert monitor.store.get(pairs[1][0].id) is None
    assert monitor.record([pairs[1], pairs[0], pairs[1]]) == ["recorded", "duplicate", "duplicate"]


def test_a_new_model_version_restarts_the_detector_and_the_window(
    db_url: str, churn: TabularModel, tmp_path: Path, model_dir: Path
) -> None:
    monitor = _monitor(db_url, churn, window_size=100, min_labels=10)
    monitor.record(_served(churn, 150, seed=4))
    monitor.process(full=True)
    before = monitor.store.tracker("churn")
    assert before is not None and (before.window_seq, before.window_count) == (1, 50)

    retrained = load_model(model_dir, "churn")
    object.__setattr__(retrained.metadata, "version", "v2-test")
    monitor.models = lambda: {"churn": retrained}
    monitor.record(_served(churn, 20, seed=5))
    monitor.process(full=True)
    after = monitor.store.tracker("churn")
    assert after is not None
    assert after.model_version == "v2-test"
    # The old version's partial window is closed and evaluated; the new labels open window 2.
    assert (after.window_seq, after.window_count, after.evaluated_through) == (2, 20, 1)
    assert monitor.summary(retrained)["concept_drift"]["labels_seen"] == 20
