"""The prediction log's insert process: a real child process writing to real databases."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from helpers import WAIT_SECONDS, eventually
from mlobs.monitoring.metrics import Metrics
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.insert_process import (
    InsertProcess,
    OffProcessStore,
    RowsRefused,
    StoreUnreachable,
)
from mlobs.storage.prediction_log import PredictionLog
from mlobs.storage.repositories import PredictionRepository

from .test_prediction_log import make_record


@pytest.fixture
def writer(db_url: str) -> Iterator[tuple[InsertProcess, PredictionRepository]]:
    engine = make_engine(db_url)
    migrate(engine)
    proc = InsertProcess(db_url, timeout=WAIT_SECONDS)
    proc.start()
    yield proc, PredictionRepository(engine)
    proc.stop()
    engine.dispose()


# A timeout that must never run out in a test (twice the bound of a wait for an event): the
# call that would wait for it is seen to end sooner, or the test fails at that bound.
NEVER = 2 * WAIT_SECONDS


def _wait_exit(pid: int) -> None:
    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    eventually(gone, message=f"process {pid} did not exit")


def _returns(call: Callable[[], object]) -> BaseException | None:
    """``call()`` run in a thread: what it raised (None if nothing) once it has returned;
    AssertionError if it never does (``eventually``'s bound)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    eventually(lambda: not thread.is_alive(), message="the call blocked")
    return raised[0] if raised else None


def test_batches_are_stored_by_the_child_exactly_as_sent(
    writer: tuple[InsertProcess, PredictionRepository],
) -> None:
    proc, repo = writer
    a = make_record()
    b = make_record("price", probability=None, prediction=250_000.5, features={"sqft": None})
    c = make_record("churn", features={"plan": "pr\u00e9mium \u2713", "tenure": 1e-300})
    proc.insert_many([a, b, c])
    # Read back in this process: what the child wrote is the same record, UTC time included.
    assert repo.get(a.id) == a and repo.get(b.id) == b and repo.get(c.id) == c
    assert proc.pid is not None and proc.pid != os.getpid()


def test_a_batch_sent_again_is_not_stored_twice(
    writer: tuple[InsertProcess, PredictionRepository],
) -> None:
    proc, repo = writer
    batch = [make_record() for _ in range(5)]
    proc.insert_many(batch)
    proc.insert_many([*batch, make_record()])  # an answer was lost: the batch comes again
    assert repo.count() == 6


def test_a_refused_row_is_reported_as_refused(db_url: str) -> None:
    """PostgreSQL's JSONB refuses a NUL character: the child answers ``refused`` so the log can
    isolate the row; SQLite stores it."""
    engine = make_engine(db_url)
    migrate(engine)
    proc = InsertProcess(db_url)
    try:
        bad = make_record(features={"channel": "a\x00b"})
        if engine.dialect.name == "postgresql":
            with pytest.raises(RowsRefused, match="DataError"):
                proc.insert_many([bad])
            proc.insert_many([make_record()])  # the child goes on
        else:
            proc.insert_many([bad])
        # PostgreSQL: only the good row after it; SQLite: the row itself.
        assert PredictionRepository(engine).count() == 1
    finally:
        proc.stop()
        engine.dispose()


def test_an_unreachable_database_is_reported_unreachable_and_the_child_stays() -> None:
    # Nothing listens on port 1: the driver fails to connect.
    proc = InsertProcess("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    try:
        with pytest.raises(StoreUnreachable, match="OperationalError"):
            proc.insert_many([make_record()])
        pid = proc.pid
        with pytest.raises(StoreUnreachable):
            proc.insert_many([make_record()])
        assert proc.pid == pid and proc.restarts == 0
    finally:
        proc.stop()


def test_a_dead_child_is_replaced_for_the_next_batch(
    writer: tuple[InsertProcess, PredictionRepository],
) -> None:
    proc, repo = writer
    proc.insert_many([make_record()])
    old, child = proc.pid, proc._proc
    assert old is not None and child is not None
    os.kill(old, signal.SIGKILL)
    child.wait(WAIT_SECONDS)  # reaped here, as the writer would find it: dead
    proc.insert_many([make_record()])
    assert proc.pid not in (None, old) and proc.restarts == 1
    assert repo.count() == 2


@pytest.mark.parametrize(
    ("size", "blob", "match"),
    [(1, "", "no answer"), (1_000, "x" * 1_000, "does not read")],
    ids=["answer-never-comes", "pipe-full"],
)
def test_a_stopped_child_times_out_is_killed_and_replaced(
    db_url: str, size: int, blob: str, match: str
) -> None:
    """A child that stops (SIGSTOP): a small batch waits for an answer that never comes; a batch
    of ~1 MB, larger than the pipe's buffer, cannot even be written. Either way the writer gives
    up at the timeout instead of blocking, and a new child takes the next batch.

    The timeout under test is 1 s; the one the child was started with would never run out
    within the test (``NEVER``), so a call that ends gave up at the 1 s one."""
    engine = make_engine(db_url)
    migrate(engine)
    proc = InsertProcess(db_url, timeout=NEVER)  # a child's start takes ~1 s on a busy machine
    try:
        proc.insert_many([make_record()])
        proc.timeout = 1.0
        stuck = proc.pid
        assert stuck is not None
        os.kill(stuck, signal.SIGSTOP)
        batch = [make_record(features={"blob": blob}) for _ in range(size)]
        raised = _returns(lambda: proc.insert_many(batch))
        assert isinstance(raised, StoreUnreachable) and re.search(match, str(raised)), raised
        _wait_exit(stuck)
        assert proc.restarts == 1
        proc.timeout = NEVER
        proc.insert_many([make_record()])
        assert proc.pid not in (None, stuck)
        # The batch that timed out may or may not have gone in (killed before or after its
        # commit); the other two did.
        assert PredictionRepository(engine).count() in (2, 2 + size)
    finally:
        proc.stop()
        engine.dispose()


def test_the_child_ignores_stop_signals_and_exits_when_its_input_closes(
    writer: tuple[InsertProcess, PredictionRepository],
) -> None:
    """A SIGTERM or SIGINT to the whole process group must not take the writer away before the
    server drains its log; closing its stdin ends it cleanly."""
    proc, repo = writer
    proc.insert_many([make_record()])
    pid = proc.pid
    assert pid is not None
    assert os.getsid(pid) != os.getsid(0)  # its own session: group signals do not reach it
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    # A window for what must not happen (the child dying of them): a slow machine can only let
    # it pass unseen, never fail the test.
    time.sleep(0.3)
    proc.insert_many([make_record()])
    assert proc.pid == pid
    child = proc._proc
    assert child is not None
    proc.stop()
    assert child.returncode == 0
    assert repo.count() == 2
    # Stopped means stopped: a late batch is refused (to the spill), no new child starts.
    with pytest.raises(StoreUnreachable, match="stopped"):
        proc.insert_many([make_record()])
    assert proc.pid is None


def test_stop_does_not_wait_forever_for_a_busy_child(db_url: str) -> None:
    """``stop(timeout=1.0)`` kills a child busy past 1 s; the insert's own timeout would never
    run out within the test (``NEVER``), so a stop that ends did not wait for it."""
    engine = make_engine(db_url)
    migrate(engine)
    proc = InsertProcess(db_url, timeout=NEVER)
    proc.insert_many([make_record()])
    stuck = proc.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)
    errors: list[BaseException] = []

    def insert() -> None:
        try:
            proc.insert_many([make_record()])
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=insert, daemon=True)
    t.start()
    # The insert is waiting for the stopped child: it holds the one-call-at-a-time lock.
    eventually(proc._lock.locked, interval=0.01, message="the insert never started")
    assert _returns(lambda: proc.stop(timeout=1.0)) is None
    eventually(lambda: not t.is_alive(), message="the insert outlived the stop")
    assert len(errors) == 1 and isinstance(errors[0], StoreUnreachable)
    _wait_exit(stuck)
    engine.dispose()


def test_the_log_drains_through_the_child_and_isolates_refused_rows(db_url: str) -> None:
    """The whole writer path with the inserts in the child: everything submitted is stored by
    ``stop``; a row the database refuses (PostgreSQL) and a value orjson cannot encode are
    dropped and counted, one by one, without blocking the rest."""
    engine = make_engine(db_url)
    migrate(engine)
    repo, registry = PredictionRepository(engine), CollectorRegistry()
    proc = InsertProcess(db_url)
    plog = PredictionLog(
        OffProcessStore(repo, proc), Metrics(registry), batch_size=40, flush_interval=0.01
    )
    plog.start()
    good = [make_record() for _ in range(100)]
    refused = make_record("churn", features={"channel": "a\x00b"})
    unencodable = make_record("price", features={"x": object()})
    not_finite = make_record("price", probability=float("nan"))
    for r in [*good[:50], refused, unencodable, not_finite, *good[50:]]:
        assert plog.submit(r)
    assert plog.stop() == 0
    proc.stop()
    pg = engine.dialect.name == "postgresql"
    assert repo.count() == 100 + (0 if pg else 1)
    assert all(repo.get(r.id) == r for r in good[::10])

    def dropped(model: str) -> float:
        value = registry.get_sample_value(
            "mlobs_prediction_log_dropped_total", {"model_name": model}
        )
        return value or 0.0

    assert dropped("churn") == (1 if pg else 0)
    assert dropped("price") == 2
    assert dropped("fraud") == 0
    engine.dispose()
