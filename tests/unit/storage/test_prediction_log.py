"""The prediction log writer and repository on real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import inspect

from helpers import eventually
from mlobs.errors import Unavailable
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.records import PredictionRecord
from mlobs.storage.db import make_engine, migrate, ping
from mlobs.storage.prediction_log import PredictionLog
from mlobs.storage.repositories import PredictionRepository


def make_record(model: str = "fraud", **kw: object) -> PredictionRecord:
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "model_name": model,
        "model_version": "v1",
        "created_at": datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc),
        "features": {"amount": 12.5, "channel": None, "hour": 3.0},
        "prediction": 1.0,
        "probability": 0.75,
        "latency_ms": 0.2,
    }
    values.update(kw)
    return PredictionRecord(**values)  # type: ignore[arg-type]


def test_migrations_are_idempotent_and_create_the_log(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)
    assert "predictions" in inspect(engine).get_table_names()
    assert ping(engine) is None
    engine.dispose()


def test_repository_round_trip_keeps_nulls_and_utc(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    repo = PredictionRepository(engine)
    a, b = make_record(), make_record("price", probability=None, prediction=250_000.0)
    repo.insert_many([a, b])
    assert repo.get(a.id) == a
    assert repo.get(b.id) == b
    assert repo.get(str(uuid.uuid4())) is None
    assert repo.count() == 2 and repo.count("price") == 1
    engine.dispose()


def test_writer_batches_and_drains_everything_on_stop(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    repo, registry = PredictionRepository(engine), CollectorRegistry()
    plog = PredictionLog(repo, Metrics(registry), batch_size=16, flush_interval=0.01)
    plog.start()
    records = [make_record() for _ in range(100)]
    for r in records:
        assert plog.submit(r)
        assert plog.get(r.id) == r  # readable while queued
    assert plog.stop() == 0
    assert repo.count() == 100
    assert (
        registry.get_sample_value("mlobs_prediction_log_written_total", {"model_name": "fraud"})
        == 100
    )
    # Batched: far fewer inserts than rows.
    inserts = registry.get_sample_value("mlobs_prediction_log_write_seconds_count")
    assert inserts is not None and inserts <= 100 / 16 * 3
    engine.dispose()


def test_full_queue_drops_and_counts(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    migrate(engine)
    registry = CollectorRegistry()
    plog = PredictionLog(PredictionRepository(engine), Metrics(registry), queue_size=2)
    kept = [make_record(), make_record()]
    dropped = make_record("churn")
    assert all(plog.submit(r) for r in kept)  # writer not started: the queue fills
    assert not plog.submit(dropped)
    assert plog.get(dropped.id) is None
    assert (
        registry.get_sample_value("mlobs_prediction_log_dropped_total", {"model_name": "churn"})
        == 1
    )
    engine.dispose()


def test_failed_inserts_are_retried_until_the_database_is_ready(tmp_path: object) -> None:
    """The table does not exist at first: every insert fails, and nothing is dropped."""
    engine = make_engine(f"sqlite:///{tmp_path}/late.db")
    repo, registry = PredictionRepository(engine), CollectorRegistry()
    plog = PredictionLog(repo, Metrics(registry), flush_interval=0.01, max_backoff=0.1)
    plog.start()
    records = [make_record() for _ in range(20)]
    for r in records:
        plog.submit(r)
    eventually(
        lambda: registry.get_sample_value("mlobs_prediction_log_write_errors_total"),
        interval=0.01,
        message="no write error counted",
    )
    assert plog.last_error is not None
    assert plog.get(records[0].id) == records[0]  # still pending, still readable
    with pytest.raises(Unavailable):
        plog.get(str(uuid.uuid4()))  # not pending, and the table cannot answer
    migrate(engine)
    eventually(
        lambda: not (plog.depth or plog.last_error),
        interval=0.02,
        message=lambda: f"not drained: depth {plog.depth}, last error {plog.last_error}",
    )
    assert plog.stop() == 0
    assert repo.count() == 20
    engine.dispose()


@pytest.mark.parametrize("batch", [1, 7, 500])
def test_batch_sizes(tmp_path: object, batch: int) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/b{batch}.db")
    migrate(engine)
    repo = PredictionRepository(engine)
    plog = PredictionLog(repo, Metrics(CollectorRegistry()), batch_size=batch, flush_interval=0.01)
    plog.start()
    for _ in range(30):
        plog.submit(make_record())
    assert plog.stop() == 0 and repo.count() == 30
    engine.dispose()


def test_a_row_the_database_refuses_is_isolated_and_counted_not_blocking(db_url: str) -> None:
    """A NUL character passes SQLite but PostgreSQL's JSONB refuses it; a duplicate id (a retried
    batch that had committed) is skipped. Neither blocks the rows around it."""
    engine = make_engine(db_url)
    migrate(engine)
    repo, registry = PredictionRepository(engine), CollectorRegistry()
    plog = PredictionLog(repo, Metrics(registry), batch_size=50, flush_interval=0.01)
    stored_before = make_record()
    repo.insert_many([stored_before])
    plog.start()
    good = [make_record() for _ in range(20)]
    bad = make_record("churn", features={"channel": "a\x00b"})
    for r in [*good[:10], bad, stored_before, *good[10:]]:
        plog.submit(r)
    assert plog.stop() == 0
    assert repo.count() == 21 + (1 if engine.dialect.name == "sqlite" else 0)
    dropped = registry.get_sample_value(
        "mlobs_prediction_log_dropped_total", {"model_name": "churn"}
    )
    assert (dropped or 0) == (0 if engine.dialect.name == "sqlite" else 1)
    engine.dispose()


def test_a_steady_stream_is_written_once_per_interval(db_url: str) -> None:
    """Each wake writes what was queued when it woke: records arriving during the insert wait
    for the next wake instead of being chased with an insert per handful of them."""
    engine = make_engine(db_url)
    migrate(engine)
    repo, registry = PredictionRepository(engine), CollectorRegistry()
    interval, seconds = 0.1, 1.0
    plog = PredictionLog(repo, Metrics(registry), batch_size=500, flush_interval=interval)
    plog.start()
    submitted = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # ~2,000 records a second, a few at a time
        for _ in range(4):
            assert plog.submit(make_record())
            submitted += 1
        time.sleep(0.002)
    assert plog.stop() == 0
    assert repo.count() == submitted
    inserts = registry.get_sample_value("mlobs_prediction_log_write_seconds_count")
    # ~200 records an interval, under the batch size: one insert per wake (at most
    # seconds / interval of them while producing) and one at the stop.
    assert inserts is not None and inserts <= seconds / interval + 2, (inserts, submitted)
    engine.dispose()


class _Arrivals:
    """A real repository whose inserts are followed by more records arriving (as they would
    while a slow insert runs), and which notes how many are queued after each insert."""

    def __init__(self, repo: PredictionRepository, per_insert: int, inserts: int) -> None:
        self.repo, self.per_insert, self.left = repo, per_insert, inserts
        self.plog: PredictionLog | None = None
        self.events: list[tuple[str, int]] = []
        self.submitted = 0

    def insert_many(self, records: list[PredictionRecord]) -> None:
        self.repo.insert_many(records)
        assert self.plog is not None
        if self.left > 0:
            self.left -= 1
            for _ in range(self.per_insert):
                assert self.plog.submit(make_record())
                self.submitted += 1
        self.events.append(("insert", self.plog.depth))

    def __getattr__(self, name: str) -> object:
        return getattr(self.repo, name)


class _MarkedWakes(threading.Event):
    """The writer's stop event, noting each time the writer goes back to sleep."""

    def __init__(self, events: list[tuple[str, int]]) -> None:
        super().__init__()
        self.events = events

    def wait(self, timeout: float | None = None) -> bool:
        self.events.append(("sleep", 0))
        return super().wait(timeout)


def test_full_batches_are_not_left_waiting_for_the_next_wake(db_url: str) -> None:
    """Near the write capacity more than a batch comes in during each insert: the writer keeps
    writing while a full batch waits, and sleeps only on a remainder smaller than a batch."""
    engine = make_engine(db_url)
    migrate(engine)
    batch = 50
    store = _Arrivals(PredictionRepository(engine), per_insert=batch + 10, inserts=20)
    plog = PredictionLog(store, Metrics(CollectorRegistry()), batch_size=batch,  # type: ignore[arg-type]
                         flush_interval=0.05)  # fmt: skip
    store.plog = plog
    plog._stopping = _MarkedWakes(store.events)
    for _ in range(3 * batch):
        assert plog.submit(make_record())
    plog.start()
    eventually(
        lambda: not (store.left or plog.depth),
        interval=0.01,
        message="the arrivals were never all written",
    )
    assert plog.stop() == 0
    assert store.repo.count() == 3 * batch + store.submitted == 3 * batch + 20 * (batch + 10)
    # The queue after the last insert before each sleep: under a batch, every time.
    before_sleep = [store.events[i - 1][1] for i, e in enumerate(store.events)
                    if e[0] == "sleep" and i and store.events[i - 1][0] == "insert"]  # fmt: skip
    assert before_sleep and max(before_sleep) < batch, before_sleep
    engine.dispose()
