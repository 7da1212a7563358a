"""``insert_new``: the records a transaction logged as new, and no other, on SQLite and
PostgreSQL; senders racing with the same records count each once between them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from mlobs.monitoring.records import PredictionRecord
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.repositories import PredictionRepository

T0 = datetime(2026, 12, 7, tzinfo=timezone.utc)


def _records(ids: list[str], model: str = "churn") -> list[PredictionRecord]:
    return [PredictionRecord(id=i, model_name=model, model_version="v", created_at=T0,
                             features={"x": 1.0}, prediction=1.0, probability=0.5,
                             latency_ms=0.0) for i in ids]  # fmt: skip


@pytest.fixture
def repo(db_url: str) -> Iterator[PredictionRepository]:
    engine = make_engine(db_url)
    migrate(engine)
    yield PredictionRepository(engine)
    engine.dispose()


def test_new_duplicate_and_another_models_id(repo: PredictionRepository) -> None:
    assert repo.insert_new(_records(["a", "b", "b"])) == {"a", "b"}
    assert repo.insert_new(_records(["a", "c"])) == {"c"}
    assert repo.insert_new(_records(["a"], model="fraud")) == {"a"}  # unique per model
    assert repo.count() == 4


def test_racing_senders_count_each_record_once(repo: PredictionRepository) -> None:
    ids = [f"r-{i}" for i in range(300)]
    found: list[set[str]] = []
    start = threading.Barrier(4)

    def send() -> None:
        start.wait()
        found.append(repo.insert_new(_records(ids)))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(f) for f in found) == len(ids)  # each counted by exactly one sender
    assert set().union(*found) == set(ids)
    assert repo.count() == len(ids)
