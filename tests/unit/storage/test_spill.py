"""The local spill: durable appends, exactly-once replay (also after an interrupted one), claims
across processes, torn lines; and the prediction log falling back to it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import exc as sa_exc

from helpers import eventually
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.records import LabelRecord, PredictionRecord
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.feedback_repository import FeedbackRepository
from mlobs.storage.prediction_log import PredictionLog
from mlobs.storage.repositories import PredictionRepository
from mlobs.storage.spill import Spill, label_to_json, prediction_to_json

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def record(i: int = 0) -> PredictionRecord:
    return PredictionRecord(
        id=str(uuid.uuid4()), model_name="churn", model_version="v1", created_at=T0,
        features={"tenure_months": float(i), "contract_type": None}, prediction=1.0,
        probability=0.8, latency_ms=0.1,
    )  # fmt: skip


def label(rec: PredictionRecord, actual: float = 1.0) -> LabelRecord:
    return LabelRecord(
        prediction_id=rec.id, model_name=rec.model_name, model_version=rec.model_version,
        predicted_at=rec.created_at, received_at=T0, actual=actual,
        prediction=rec.prediction, probability=rec.probability,
    )  # fmt: skip


@pytest.fixture
def repos(db_url: str) -> tuple[PredictionRepository, FeedbackRepository]:
    engine = make_engine(db_url)
    migrate(engine)
    yield PredictionRepository(engine), FeedbackRepository(engine)  # type: ignore[misc]
    engine.dispose()


def test_round_trip_and_replay_exactly_once_after_an_interruption(
    tmp_path: Path, repos: tuple[PredictionRepository, FeedbackRepository]
) -> None:
    preds_repo, labels_repo = repos
    spill = Spill(tmp_path / "spill")
    recs = [record(i) for i in range(25)]
    spill.append("prediction", [prediction_to_json(r) for r in recs])
    spill.append("label", [label_to_json(label(r)) for r in recs[:5]])
    assert len(spill.pending_files()) == 1

    calls = 0

    def flaky(batch: list[PredictionRecord]) -> None:
        nonlocal calls
        calls += 1
        preds_repo.insert_many(batch)
        if calls == 2:
            raise sa_exc.OperationalError("insert", {}, Exception("connection lost"))

    with pytest.raises(sa_exc.OperationalError):
        spill.replay(flaky, labels_repo.add_replayed, batch=10)
    # Interrupted after 20 rows were stored: the claimed file stays, to be resumed.
    assert preds_repo.count() == 20
    assert len(spill.pending_files()) == 1
    result = spill.replay(preds_repo.insert_many, labels_repo.add_replayed, batch=10)
    assert result.files == 1 and spill.pending_files() == []
    assert preds_repo.count() == 25  # each exactly once
    assert preds_repo.get(recs[3].id) == recs[3]
    stored = labels_repo.get(recs[0].id)
    assert stored is not None and stored.actual == 1.0
    assert [labels_repo.get(r.id) is not None for r in recs[:6]] == [True] * 5 + [False]


def test_a_torn_last_line_is_not_replayed(
    tmp_path: Path, repos: tuple[PredictionRepository, FeedbackRepository]
) -> None:
    preds_repo, labels_repo = repos
    spill = Spill(tmp_path)
    good = record()
    spill.append("prediction", [prediction_to_json(good)])
    with spill.path.open("ab") as fh:
        fh.write(b'{"kind": "prediction", "data": {"id": "half')  # died mid-write
    spill.replay(preds_repo.insert_many, labels_repo.add_replayed)
    assert preds_repo.count() == 1 and preds_repo.get(good.id) == good


def test_a_live_process_claim_is_left_alone_a_dead_one_is_taken(tmp_path: Path) -> None:
    spill = Spill(tmp_path)
    # Alive for the whole test: it is killed below.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        (tmp_path / f"spill-1.5.replaying-{sleeper.pid}").write_bytes(b"")
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        (tmp_path / f"spill-2.6.replaying-{dead.pid}").write_bytes(b"")
        result = spill.replay(lambda b: None, lambda b: None)
        assert result.files == 1
        assert [p.name for p in spill.pending_files()] == [f"spill-1.5.replaying-{sleeper.pid}"]
    finally:
        sleeper.kill()
        sleeper.wait()


class DeadStore:
    """A prediction store whose database is unreachable (as SQLAlchemy reports it)."""

    def __init__(self) -> None:
        self.up = False
        self.rows: dict[str, PredictionRecord] = {}

    def insert_many(self, records: list[PredictionRecord]) -> None:
        if not self.up:
            raise sa_exc.OperationalError("insert", {}, Exception("connection refused"))
        for r in records:
            self.rows.setdefault(r.id, r)

    def get(self, prediction_id: str, model_name: str | None = None) -> PredictionRecord | None:
        return self.rows.get(prediction_id)

    def get_many(
        self, ids: list[str], *, features: bool = True
    ) -> dict[str, list[PredictionRecord]]:
        return {i: [self.rows[i]] for i in ids if i in self.rows}


def test_the_log_spills_while_the_database_is_away_and_replays_when_it_returns(
    tmp_path: Path,
) -> None:
    store, registry = DeadStore(), CollectorRegistry()
    plog = PredictionLog(
        store, Metrics(registry), flush_interval=0.02, max_backoff=0.1,  # type: ignore[arg-type]
        spill=Spill(tmp_path), replay_labels=lambda labels: None,
    )  # fmt: skip
    plog.start()
    try:
        recs = [record(i) for i in range(300)]
        for r in recs:
            assert plog.submit(r)
        _wait(lambda: plog.depth == 0 and plog.spilling)
        assert plog.get(recs[7].id) == recs[7]  # readable while spilled
        spilled = registry.get_sample_value(
            "mlobs_spilled_records_total", {"kind": "prediction", "model_name": "churn"}
        )
        assert spilled == 300
        store.up = True
        _wait(lambda: not plog.spilling and not Spill(tmp_path).pending_files())
        assert set(store.rows) == {r.id for r in recs}
    finally:
        assert plog.stop() == 0
    assert registry.get_sample_value(
        "mlobs_prediction_log_dropped_total", {"model_name": "churn"}
    ) in (None, 0.0)


def test_only_a_failing_spill_drops_and_counts(tmp_path: Path) -> None:
    blocker = tmp_path / "spill"
    blocker.write_text("a file where the spill directory should be")
    store, registry = DeadStore(), CollectorRegistry()
    plog = PredictionLog(
        store, Metrics(registry), queue_size=50, flush_interval=0.02, max_backoff=0.05,  # type: ignore[arg-type]
        spill=Spill(blocker),
    )  # fmt: skip
    plog.start()
    try:
        accepted = sum(plog.submit(record(i)) for i in range(200))
        _wait(lambda: (registry.get_sample_value("mlobs_spill_failures_total") or 0) > 0)
        dropped = registry.get_sample_value(
            "mlobs_prediction_log_dropped_total", {"model_name": "churn"}
        )
        assert dropped is not None and dropped == 200 - accepted > 0
    finally:
        plog.stop(timeout=1)


def _wait(cond: Callable[[], bool]) -> None:
    eventually(cond, interval=0.02, message="condition never reached")


def test_pid_files_are_per_process(tmp_path: Path) -> None:
    assert Spill(tmp_path).path.name == f"spill-{os.getpid()}.jsonl"


def test_a_multiclass_prediction_and_its_label_keep_their_scores_and_class_label(
    tmp_path: Path, repos: tuple[PredictionRepository, FeedbackRepository]
) -> None:
    preds_repo, labels_repo = repos
    spill = Spill(tmp_path / "spill")
    rec = PredictionRecord(
        id=str(uuid.uuid4()), model_name="wine", model_version="v1", created_at=T0,
        features={"alcohol": 13.2}, prediction=2.0, probability=0.7, latency_ms=0.1,
        scores=[0.1, 0.2, 0.7], label="barbera",
    )  # fmt: skip
    lab = LabelRecord(
        prediction_id=rec.id, model_name="wine", model_version="v1", predicted_at=T0,
        received_at=T0, actual=1.0, prediction=2.0, probability=0.7, scores=[0.1, 0.2, 0.7],
    )  # fmt: skip
    spill.append("prediction", [prediction_to_json(rec)])
    spill.append("label", [label_to_json(lab)])
    spill.replay(preds_repo.insert_many, labels_repo.add_replayed, batch=10)
    assert preds_repo.get(rec.id) == rec
    assert labels_repo.get(rec.id) == lab
