"""Live windows shared by processes through one database (SQLite and PostgreSQL): every count
lands in some window, and each closed window is evaluated exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from helpers import sample_records
from mlobs.data import DATASETS, generate
from mlobs.monitoring.profiles import ReferenceProfile
from mlobs.monitoring.windows import LiveWindow
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.drift_repository import DriftRepository
from mlobs.storage.tables import drift_results, drift_windows

SPEC = DATASETS["churn"]
HERE = Path(__file__).parent


def _profile() -> ReferenceProfile:
    return ReferenceProfile.build(
        generate("churn", 5_000, seed=1), features=SPEC.feature_names,
        categorical_features=SPEC.categorical, output=np.linspace(0, 1, 5_000),
        model_name="churn",
    )  # fmt: skip


def test_two_processes_share_windows_and_evaluate_each_once(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    profile_path = tmp_path / "profile.json"
    profile_path.write_text(json.dumps(_profile().to_dict()))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "window_worker.py"),
                db_url,
                str(profile_path),
                str(seed),
                "1500",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for seed in (1, 2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    evaluated = sum(json.loads(out.strip().splitlines()[-1])["evaluated"] for out, _ in outs)
    with engine.connect() as conn:
        total_rows = conn.execute(select(func.sum(drift_windows.c.n_rows))).scalar_one()
        closed = conn.execute(
            select(func.count())
            .select_from(drift_windows)
            .where(drift_windows.c.status == "closed")
        ).scalar_one()
        results = conn.execute(select(drift_results.c.window_id)).scalars().all()
    engine.dispose()
    assert total_rows == 3_000  # nothing lost, nothing counted twice
    assert closed >= 2
    assert evaluated == closed == len(results)
    assert len(set(results)) == len(results)  # each closed window evaluated exactly once


def test_concurrent_closers_close_once(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    repo = DriftRepository(engine)
    profile = _profile()
    live = LiveWindow(profile)
    for rec in sample_records("churn", 100):
        live.add(rec, 0.3)
    delta = live.take()
    now = datetime.now(timezone.utc)
    window = repo.add_counts("churn", "v1", delta, now)
    assert window is not None and window.n_rows == 100
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(repo.close(window.id, now)))
               for _ in range(6)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    # Counts read back equal what went in; a later delta opens the next window.
    back = repo.read_counts(window.id, profile)
    for name in SPEC.feature_names:
        np.testing.assert_array_equal(back.counts[name], delta.counts[name])
    assert back.missing == {k: v for k, v in delta.missing.items()}
    nxt = repo.add_counts("churn", "v1", delta, now)
    assert nxt is not None and nxt.seq == window.seq + 1
    # Another reference profile's counts are refused while this window is open.
    assert repo.add_counts("churn", "v2", delta, now) is None
    engine.dispose()


def test_opening_twice_keeps_one_open_window(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    repo = DriftRepository(engine)
    now = datetime.now(timezone.utc)
    repo._open_new("fraud", "v1", now)
    repo._open_new("fraud", "v1", now)
    with engine.connect() as conn:
        open_count = conn.execute(
            select(func.count()).select_from(drift_windows).where(drift_windows.c.status == "open")
        ).scalar_one()
    engine.dispose()
    assert open_count == 1


def test_a_window_whose_evaluator_died_is_evaluated_once_later(db_url: str) -> None:
    from prometheus_client import CollectorRegistry

    from mlobs.monitoring.drift_monitor import DriftConfig, DriftMonitor, profile_version
    from mlobs.monitoring.metrics import Metrics

    engine = make_engine(db_url)
    migrate(engine)
    repo = DriftRepository(engine)
    profile = _profile()
    clock = {"now": datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)}
    monitor = DriftMonitor(repo, Metrics(CollectorRegistry()),
                           DriftConfig(window_size=100, min_samples=50, closing_timeout=30),
                           clock=lambda: clock["now"])  # fmt: skip
    monitor.set_profile(profile)
    live = LiveWindow(profile)
    for rec in sample_records("churn", 120, seed=3):
        live.add(rec, 0.4)
    window = repo.add_counts("churn", profile_version(profile), live.take(), clock["now"])
    assert window is not None
    assert repo.close(window.id, clock["now"])  # claimed by a process that then died
    assert monitor.flush() == []  # not stale yet: left to its claimer
    clock["now"] += timedelta(seconds=31)
    results = monitor.flush()
    assert [r.window_id for r in results] == [window.id] and results[0].n_rows == 120
    clock["now"] += timedelta(seconds=31)
    assert monitor.flush() == []  # evaluated once: never again
    with engine.connect() as conn:
        status = conn.execute(
            select(drift_windows.c.status).where(drift_windows.c.id == window.id)
        ).scalar_one()
        n_results = conn.execute(select(func.count()).select_from(drift_results)).scalar_one()
    engine.dispose()
    assert status == "closed" and n_results == 1


class _CountingStore(DriftRepository):
    """The real repository, counting the calls that reach the database."""

    calls = 0

    def __getattribute__(self, name: str):  # type: ignore[no-untyped-def]
        if name in {"open_window", "add_counts", "reclaim_stale", "close", "read_counts"}:
            object.__setattr__(self, "calls", object.__getattribute__(self, "calls") + 1)
        return object.__getattribute__(self, name)


def test_an_idle_model_is_looked_at_every_few_seconds_not_at_every_flush(tmp_path: Path) -> None:
    """A flush costs queries with the GIL held; a model without new rows in this process is
    looked at every ``idle_pass_seconds`` or when its open window is due by time, and a busy
    one at every flush, so a window still closes on time and rows are still pushed at once."""
    from prometheus_client import CollectorRegistry

    from mlobs.monitoring.drift_monitor import DriftConfig, DriftMonitor
    from mlobs.monitoring.metrics import Metrics

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    store = _CountingStore(engine)
    clock = {"now": datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)}
    config = DriftConfig(window_size=10_000, window_seconds=30, min_samples=50,
                         idle_pass_seconds=60)  # fmt: skip
    monitor = DriftMonitor(store, Metrics(CollectorRegistry()), config, clock=lambda: clock["now"])
    monitor.set_profile(_profile())

    def flush_after(seconds: float) -> tuple[int, int]:
        clock["now"] += timedelta(seconds=seconds)
        before = store.calls
        results = monitor.flush()
        return store.calls - before, len(results)

    assert flush_after(0)[0] > 0  # the first flush looks
    assert flush_after(1) == (0, 0)  # idle: nothing asked
    for rec in sample_records("churn", 120, seed=4):
        monitor.observe("churn", rec, 0.3)
    calls, _ = flush_after(1)
    assert calls > 0  # rows: pushed at once
    window = store.open_window("churn")
    assert window is not None and window.n_rows == 120
    assert flush_after(5) == (0, 0)  # idle again, window not due yet
    # Due by time (opened 2 s ago + 30 s) well before the idle pass (60 s): closed, evaluated.
    calls, evaluated = flush_after(25)
    assert calls > 0 and evaluated == 1
    assert store.open_window("churn") is None
    assert flush_after(30) == (0, 0)  # nothing open, nothing due: idle until the idle pass
    assert flush_after(31)[0] > 0
    engine.dispose()
